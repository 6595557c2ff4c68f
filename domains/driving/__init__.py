"""The driving domain: dashcam and drone scenes with weather, time of day and rare scenarios."""

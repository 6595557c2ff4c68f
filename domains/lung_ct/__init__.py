"""The lung-ct domain: chest phantom simulator, DICOM/NIfTI in and out.

``synthscape.domains.lung_ct.domain`` defines the domain and registers it; the registry imports
it on first use, so importing one part (say the phantom) does not pull in the others.
"""

"""synthscape.domains: the Domain protocol, the registry, and the built-in domains.

Built-in domains (lung-ct, driving) register themselves when their sub-package is imported;
third-party domains register through the ``synthscape.domains`` entry-point group.
"""

from synthscape.domains.base import Domain, available_domains, get_domain, register

__all__ = ["Domain", "available_domains", "get_domain", "register"]

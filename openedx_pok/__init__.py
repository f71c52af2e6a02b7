"""
Open edX plugin that issues POK (pok.tech) verifiable credentials for course certificates.
"""

__version__ = "22.0.0.dev0"

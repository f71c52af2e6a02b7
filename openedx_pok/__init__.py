"""
Open edX plugin that issues POK (pok.tech) verifiable credentials for course certificates.
"""

__version__ = "23.0.0"

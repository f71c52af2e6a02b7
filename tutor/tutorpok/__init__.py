"""
Tutor plugin that installs openedx-pok (POK verifiable credentials) into an Open edX platform run by Tutor.
"""

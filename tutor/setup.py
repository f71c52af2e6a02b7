"""
Package metadata for tutor-contrib-pok, the Tutor plugin of openedx-pok (module ``tutorpok``, plugin name ``pok``).
"""
import os
import re

from setuptools import find_packages, setup

HERE = os.path.abspath(os.path.dirname(__file__))


def get_version():
    """Read the version from tutorpok/__about__.py without importing it (Tutor may not be installed yet)."""
    with open(os.path.join(HERE, "tutorpok", "__about__.py"), encoding="utf-8") as about:
        match = re.search(r'^__version__ = ["\']([^"\']*)["\']', about.read(), re.M)
    if not match:
        raise RuntimeError("Unable to find version string.")
    return match.group(1)


with open(os.path.join(HERE, "README.rst"), encoding="utf-8") as readme_file:
    README = readme_file.read()

setup(
    name="tutor-contrib-pok",
    version=get_version(),
    description="Tutor plugin for openedx-pok: POK (pok.tech) verifiable credentials for Open edX certificates",
    long_description=README,
    long_description_content_type="text/x-rst",
    license="AGPL-3.0-or-later",
    packages=find_packages(include=["tutorpok", "tutorpok.*"]),
    include_package_data=True,
    package_data={"tutorpok": ["patches/*", "mfe/*"]},
    python_requires=">=3.10",
    # Tutor 22 runs Open edX Verawood; its hooks API (tutor.plugin.v1) is the one this plugin uses.
    install_requires=["tutor>=22.0.0,<23.0.0"],
    entry_points={"tutor.plugin.v1": ["pok = tutorpok.plugin"]},
    zip_safe=False,
    classifiers=[
        "Development Status :: 4 - Beta",
        "Intended Audience :: Developers",
        "License :: OSI Approved :: GNU Affero General Public License v3",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
    ],
)

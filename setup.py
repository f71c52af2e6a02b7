"""
Package metadata for openedx-pok.
"""
import os
import re

from setuptools import find_packages, setup

HERE = os.path.abspath(os.path.dirname(__file__))


def get_version(*file_paths):
    """Read the version from the package's __init__.py without importing it."""
    with open(os.path.join(HERE, *file_paths), encoding="utf-8") as init_file:
        match = re.search(r'^__version__ = ["\']([^"\']*)["\']', init_file.read(), re.M)
    if not match:
        raise RuntimeError("Unable to find version string.")
    return match.group(1)


def load_requirements(*requirements_paths):
    """Read abstract requirements from .in files, dropping -c/-r lines and comments."""
    requirements = []
    for path in requirements_paths:
        with open(os.path.join(HERE, path), encoding="utf-8") as reqs:
            for line in reqs:
                line = line.split("#", 1)[0].strip()
                if line and not line.startswith("-"):
                    requirements.append(line)
    return requirements


with open(os.path.join(HERE, "README.rst"), encoding="utf-8") as readme_file:
    README = readme_file.read()

setup(
    name="openedx-pok",
    version=get_version("openedx_pok", "__init__.py"),
    description="Issue POK (pok.tech) verifiable credentials for Open edX course certificates",
    long_description=README,
    long_description_content_type="text/x-rst",
    license="AGPL-3.0-or-later",
    # Only the plugin: the POK simulator (pok_simulator/) and the test helpers (test_utils/) are top-level test tooling
    # that an LMS never installs (tests/test_packaging.py builds the wheel and checks).
    packages=find_packages(include=["openedx_pok", "openedx_pok.*"], exclude=["*tests"]),
    # The data files the app needs at run time, declared here rather than picked up from MANIFEST.in with
    # include_package_data, which makes setuptools warn that the data-only folders (locale/*/LC_MESSAGES,
    # templates/openedx_pok) are "absent from the `packages` configuration". MANIFEST.in is for the sdist only.
    package_data={
        "openedx_pok": [
            "templates/**/*.html",
            "templates/**/*.txt",
            "static/**/*",
            "locale/*/LC_MESSAGES/django.po",
            "locale/*/LC_MESSAGES/django.mo",
        ],
    },
    include_package_data=False,
    python_requires=">=3.11",
    install_requires=load_requirements("requirements/base.in") + ["Django>=4.2,<6.0"],
    zip_safe=False,
    entry_points={
        "lms.djangoapp": ["openedx_pok = openedx_pok.apps:OpenedxPokConfig"],
        "cms.djangoapp": ["openedx_pok = openedx_pok.apps:OpenedxPokConfig"],
    },
    classifiers=[
        "Development Status :: 4 - Beta",
        "Framework :: Django",
        "Framework :: Django :: 4.2",
        "Framework :: Django :: 5.2",
        "Intended Audience :: Developers",
        "Natural Language :: English",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
    ],
)

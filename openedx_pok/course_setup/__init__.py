"""
How a course is set up to issue POK credentials: the POK accounts (``accounts``), the clients, template cache and
course setup read at issuance (``configuration``), the synced catalog of templates and pages (``catalog``), the
sources of template parameters (``parameters``) and the body of a credential (``payload``).
"""

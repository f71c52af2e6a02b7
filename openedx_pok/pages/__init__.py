"""
What the certificate page shows: the HTML of the plugin's own pages (``render``), credential images and staff
previews (``media``), share links (``sharing``). The decision of which page is ``api.certificate_page``; nothing
here calls POK on a learner's page view.
"""

"""The metadata API served to instances (via the Neutron metadata agent): Nova's EC2 and
OpenStack trees plus IMDSv2 session tokens.  ``tree`` builds the answers, ``api`` serves them."""

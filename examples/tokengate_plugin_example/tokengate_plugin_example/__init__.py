"""Example third-party tokengate plugin: ``upper`` action, ``business_hours`` authorizer."""

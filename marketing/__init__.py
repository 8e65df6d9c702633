"""What marketers receive: churn-risk lists, the marketing report, the attribution report and their charts."""

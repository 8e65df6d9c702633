"""cdp-ml: the command line, typed configuration and the error hierarchy shared by every stage."""

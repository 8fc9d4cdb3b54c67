"""Getting the official files: the verified, resumable hub transfer, background jobs, the service the
tab, the HTTP API and the command line share, the HTTP routes and the tab itself."""

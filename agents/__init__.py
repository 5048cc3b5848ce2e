"""Stream processing: thin Faust agents (this package) over the pure core (`agents.core`)."""

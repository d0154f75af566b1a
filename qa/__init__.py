"""Chat-style Q&A over film reviews: corpus -> passages -> store -> retrieve -> answer."""

__version__ = "0.1.0"

"""Tools around the models: cost profiling, visualisation, export."""

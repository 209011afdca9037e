"""The human-editable service catalogue: loading, validation, seeding and NLU export."""

from onewindow.service_catalogue.loader import Catalogue, CatalogueError, load_catalogue

__all__ = ["Catalogue", "CatalogueError", "load_catalogue"]

"""CSS and JavaScript of the review page, served from the package (nothing from the internet)."""

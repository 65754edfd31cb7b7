"The README and the static site, rendered from the notebooks and the committed results."

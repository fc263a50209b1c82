"""Gene Ontology gene graph: OBO/GAF readers, exact fast similarity, AnnData wrapper."""

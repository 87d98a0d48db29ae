"""What users do with a model once they have one: classify images (:mod:`.predict`), explain its
decisions (:mod:`.explain`), export and deploy it (:mod:`.export`), time it (:mod:`.benchmark`)
and count its cost (:mod:`.stats`)."""

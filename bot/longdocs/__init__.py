"""Long documents (issue 21): documents one prompt cannot hold — longer than the window, or
with more scanned pages than a prompt may carry as images — read whole in a turn of their
own: scanned pages through the model's vision, the text in parts read in parallel with the
question in mind, then one answer from the parts that cites pages, slides, sheets and
chapters. Registered with the core by ``feature.long_documents``."""

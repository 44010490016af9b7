"""The previous minatBakatUmum renderer (reportlab, built-in Helvetica), kept so `make bench` can time
it beside the Typst template in the same run. The service no longer uses it."""

"""CTranslate2 imports its model converters lazily; they pull in torch and transformers, which the app never
uses (it only runs converted models), so keep the analysis from following them."""

excludedimports = ["ctranslate2.converters", "ctranslate2.specs", "torch", "transformers"]

"""How the zoo meets other libraries' formats (Hugging Face ``transformers``)."""

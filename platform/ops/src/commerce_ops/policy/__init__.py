"""The offline checkov run over the rendered manifests (the rules themselves live in commerce_platform.policy)."""

"""The tooling around the Pulumi program (commerce_platform): the `ops` CLI and everything it runs."""

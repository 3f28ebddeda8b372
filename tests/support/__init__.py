"""What the tests share, as one pytest plugin (`tests.support.plugin`, loaded by the root
conftest): a store, a webhook receiver, an emulator and `eventually`. Test modules import
helpers from here, never from a conftest."""

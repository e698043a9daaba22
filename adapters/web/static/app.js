// Placeholder: the front-end (adapters/web/static) is built on branch issue11f.

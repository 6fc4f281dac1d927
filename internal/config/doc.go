// Package config loads Gatehouse's YAML configuration.
//
// Loading happens in three layers, each wrapping its errors with where it is
// (file:line and the field path) so an operator can fix a config without
// reading code:
//
//  1. decode: the file is parsed into a YAML node tree; ${VAR} and
//     ${VAR:-default} are expanded inside scalar values (never across the
//     document structure, so a variable cannot inject keys); the tree is
//     decoded strictly, unknown keys are errors.
//  2. provision: secret references (env:NAME, file:/path) are resolved and
//     defaults are filled in.
//  3. validate: values are checked together (names unique, addresses
//     parseable, groups referenced, ...).
//
// `gatehouse check` and `gatehouse serve` run the same Load, so a config
// that checks is a config that serves.
package config

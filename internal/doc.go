// Package internal holds no code: its folders are the parts of the gateway no one outside this
// module may import, by the role each plays (DESIGN.md section 2). internal/layout holds each
// role's import rule as a test.
//
// The composition root, which alone knows every part and wires them in order:
//   - agent: config -> cluster -> plugin host -> sandbox -> gateway -> HTTP; start and shutdown.
//
// Shared types, which the layers import and which import (almost) nothing of the module:
//   - structs: the domain types (functions, versions, aliases, limits).
//   - lambda: Lambda's wire types (invoke, errors, function-URL events, the event stream).
//
// Infrastructure, self-contained pieces the layers above put together:
//   - natsengine: the NATS JetStream server embedded in the agent.
//   - pki: the certificates of the cluster's mutual TLS.
//   - funclog: each function's stored log.
//   - metrics: the node's Prometheus registry, per-function series with bounded labels, and
//     each function's recent per-minute history.
//   - unpack: the one place an archive we did not make is written out.
//   - codepkg: a function's code folder or zip turned into the zip the gateway stores.
//   - image: container images fetched from registries, OCI layouts and docker save archives,
//     kept as unpacked layers in a content-addressed store.
//   - signing: code signatures in Sigstore's formats: signed zips, bundles, publishers, and
//     their verification with sigstore-go.
//   - tracing: spans of invocations' phases exported over OTLP/HTTP with the OpenTelemetry SDK,
//     behind invoke.Tracer (nothing of it runs when tracing is off).
//
// Test fixtures, which only tests build, start or import (testfixtures/):
//   - testfunction: an aws-lambda-go function driven by its event; testbuild builds it.
//   - streamruntime: a custom runtime streaming with no Lambda library.
//   - testplugin: a trigger and extension plugin for the host's and the agent's tests.
//   - s3test: a real S3-compatible server (versitygw).
//   - sigtest: a certificate authority, code-signing certificates and bundles signed with them.
//   - otlpsink: an OTLP/HTTP trace receiver decoding what a real exporter sends.
//
// layout is the test of the rules. What plugins share with the agent (the NATS queue and stream
// conventions, the plugin-side NATS set-up) is not here but in plugins/sdk, so that the built-in
// triggers import only what a third party can.
package internal

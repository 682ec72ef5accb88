// Package infra holds vidpipe's deployment files (container image, compose
// file, NATS configuration, Kubernetes manifests); its tests validate them
// offline with the parsers and servers that will read them.
package infra

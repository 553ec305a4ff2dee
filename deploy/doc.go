// Package deploy holds the checks of how the pipeline is deployed: docker-compose.yml and the
// Dockerfiles (and the Kubernetes manifests under k8s/) are validated offline, with no Docker
// engine or cluster, so that a broken deployment file fails `make test` rather than a user.
package deploy

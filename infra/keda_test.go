package infra

import (
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// scaledObject mirrors the fields of KEDA's keda.sh/v1alpha1 ScaledObject
// that a manifest may set, as the KEDA documentation specifies them
// (keda.sh/docs/2.x/reference/scaledobject-spec and
// keda.sh/docs/2.x/scalers/nats-jetstream). Decoded strictly, a misspelt or
// misplaced field is an error here instead of being ignored by the cluster.
// Field names match case-sensitively, as the API server's do.
type scaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              scaledObjectSpec `json:"spec"`
}

type scaledObjectSpec struct {
	ScaleTargetRef        scaleTarget    `json:"scaleTargetRef"`
	PollingInterval       *int32         `json:"pollingInterval,omitempty"`
	InitialCooldownPeriod *int32         `json:"initialCooldownPeriod,omitempty"`
	CooldownPeriod        *int32         `json:"cooldownPeriod,omitempty"`
	IdleReplicaCount      *int32         `json:"idleReplicaCount,omitempty"`
	MinReplicaCount       *int32         `json:"minReplicaCount,omitempty"`
	MaxReplicaCount       *int32         `json:"maxReplicaCount,omitempty"`
	Fallback              map[string]any `json:"fallback,omitempty"`
	Advanced              map[string]any `json:"advanced,omitempty"`
	Triggers              []scaleTrigger `json:"triggers"`
}

type scaleTarget struct {
	APIVersion             string `json:"apiVersion,omitempty"`
	Kind                   string `json:"kind,omitempty"`
	Name                   string `json:"name"`
	EnvSourceContainerName string `json:"envSourceContainerName,omitempty"`
}

type scaleTrigger struct {
	Type              string            `json:"type"`
	Name              string            `json:"name,omitempty"`
	UseCachedMetrics  bool              `json:"useCachedMetrics,omitempty"`
	MetricType        string            `json:"metricType,omitempty"`
	Metadata          map[string]string `json:"metadata"`
	AuthenticationRef *struct {
		Name string `json:"name"`
		Kind string `json:"kind,omitempty"`
	} `json:"authenticationRef,omitempty"`
}

// decodeScaledObject decodes one ScaledObject document strictly: unknown,
// duplicate or differently cased fields are errors.
func decodeScaledObject(doc []byte) (*scaledObject, error) {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, fmt.Errorf("decode ScaledObject: %w", err)
	}
	var so scaledObject
	strict, err := kjson.UnmarshalStrict(j, &so)
	if err == nil && len(strict) > 0 {
		err = errors.Join(strict...)
	}
	if err != nil {
		return nil, fmt.Errorf("decode ScaledObject: %w", err)
	}
	return &so, nil
}

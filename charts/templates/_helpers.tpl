{{/* Helpers every component uses: names, labels, images, service hosts, security contexts.
Each component's own helpers sit in its folder (kafka/, postgresql/, monitoring/). */}}

{{/*
Name of the chart, used by the app.kubernetes.io/name label.
Truncated to 63 characters because some Kubernetes name fields are limited to that (DNS-1123).
*/}}
{{- define "ticket-pipeline.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Chart name and version, used by the helm.sh/chart label.
*/}}
{{- define "ticket-pipeline.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Name of a component's resources, e.g. "redpanda" or "producer".
Names are fixed (they do not carry the release name) so that the documented kubectl commands are
exact; the price is one release per namespace. Truncated to 63 characters.
Usage: {{ include "ticket-pipeline.componentName" "redpanda" }}
*/}}
{{- define "ticket-pipeline.componentName" -}}
{{- . | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Standard labels of every resource: helm.sh/chart and app.kubernetes.io/*, plus commonLabels.
Usage: {{ include "ticket-pipeline.labels" (dict "root" $ "component" "redpanda") }}
*/}}
{{- define "ticket-pipeline.labels" -}}
helm.sh/chart: {{ include "ticket-pipeline.chart" .root }}
{{ include "ticket-pipeline.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: {{ include "ticket-pipeline.name" .root }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Selector labels of a component: the immutable subset of the standard labels that Services and
workloads select pods by.
Usage: {{ include "ticket-pipeline.selectorLabels" (dict "root" $ "component" "redpanda") }}
*/}}
{{- define "ticket-pipeline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ticket-pipeline.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
Full image reference "registry/repository:tag" of an image block of values; an empty tag means
the chart's appVersion (our own images), an empty registry means none (images kind-loaded).
Usage: {{ include "ticket-pipeline.image" (dict "image" .Values.producer.image "root" $) }}
*/}}
{{- define "ticket-pipeline.image" -}}
{{- $tag := .image.tag | default .root.Chart.AppVersion | toString -}}
{{- if .image.registry -}}
{{- printf "%s/%s:%s" .image.registry .image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/*
Fully qualified DNS name of a Service of this release: <service>.<namespace>.svc.<clusterDomain>.
Usage: {{ include "ticket-pipeline.serviceHost" (dict "root" $ "service" "redpanda") }}
*/}}
{{- define "ticket-pipeline.serviceHost" -}}
{{- printf "%s.%s.svc.%s" .service .root.Release.Namespace .root.Values.clusterDomain -}}
{{- end -}}

{{/*
Pod-level security context of our pods: non-root, with the runtime's default seccomp profile.
Usage: {{ include "ticket-pipeline.podSecurityContext" 185 }}  (the image's UID, also GID and fsGroup)
*/}}
{{- define "ticket-pipeline.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Container-level security context: no privilege escalation, no capabilities, read-only root
filesystem (writable paths are emptyDir or PVC mounts).
*/}}
{{- define "ticket-pipeline.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
{{- end -}}

{{/*
The env var that makes our processes listen on every interface of their pod (BIND_HOST, whose
default outside the chart is loopback): Prometheus, the probes and the Services reach them on
the pod's IP.
*/}}
{{- define "ticket-pipeline.bindHostEnv" -}}
- name: BIND_HOST
  value: "0.0.0.0"
{{- end -}}

{{/* Names, labels and the version gates every template shares. */}}

{{- define "entra-webhook.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-entra-webhook, or the release name when it already says entra-webhook. */}}
{{- define "entra-webhook.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "entra-webhook.controllerName" -}}
{{- printf "%s-controller" (include "entra-webhook.fullname" .) -}}
{{- end -}}

{{/* The controller's headless metrics Service; a ServiceMonitor makes it the job name too. */}}
{{- define "entra-webhook.controllerMetricsService" -}}
{{- printf "%s-metrics" (include "entra-webhook.controllerName" .) -}}
{{- end -}}

{{- define "entra-webhook.tlsSecret" -}}
{{- default (printf "%s-tls" (include "entra-webhook.fullname" .)) .Values.certificates.secretName -}}
{{- end -}}

{{/* Selector labels of one component: call with (dict "root" $ "component" "webhook"). */}}
{{- define "entra-webhook.selectorLabels" -}}
app.kubernetes.io/name: {{ include "entra-webhook.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Labels of every object; with a component, its selector labels too. */}}
{{- define "entra-webhook.labels" -}}
{{- $root := .root | default . -}}
{{- if .component -}}
{{ include "entra-webhook.selectorLabels" . }}
{{- else -}}
app.kubernetes.io/name: {{ include "entra-webhook.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
{{- end }}
app.kubernetes.io/part-of: entra-webhook
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "entra-webhook.image" -}}
{{- $image := .Values.image -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- end -}}

{{/* policy/v1 from Kubernetes 1.21 (the only version from 1.25), policy/v1beta1 before. */}}
{{- define "entra-webhook.pdbApiVersion" -}}
{{- if semverCompare ">=1.21-0" .Capabilities.KubeVersion.Version -}}
policy/v1
{{- else -}}
policy/v1beta1
{{- end -}}
{{- end -}}

{{/* matchConditions on webhooks: GA in Kubernetes 1.30; `auto` follows the server. */}}
{{- define "entra-webhook.matchConditions" -}}
{{- $enabled := toString .Values.webhook.matchConditions.enabled -}}
{{- if or (eq $enabled "true") (and (eq $enabled "auto") (semverCompare ">=1.30-0" .Capabilities.KubeVersion.Version)) -}}
true
{{- end -}}
{{- end -}}

{{/*
A PodDisruptionBudget for one component: (dict "root" $ "component" "webhook" "name" NAME "minAvailable" N).
*/}}
{{- define "entra-webhook.podDisruptionBudget" -}}
apiVersion: {{ include "entra-webhook.pdbApiVersion" .root }}
kind: PodDisruptionBudget
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "entra-webhook.labels" . | nindent 4 }}
spec:
  minAvailable: {{ .minAvailable }}
  selector:
    matchLabels:
      {{- include "entra-webhook.selectorLabels" . | nindent 6 }}
{{- end -}}

{{/* The namespaces no webhook entry ever selects (kubernetes.io/metadata.name is set from 1.21). */}}
{{- define "entra-webhook.excludedNamespaces" -}}
- key: kubernetes.io/metadata.name
  operator: NotIn
  values: [kube-system, kube-node-lease, kube-public, {{ .Release.Namespace }}]
{{- end -}}

{{/*
Optional APIs a value needs, checked against the cluster before anything is created. Only a cluster's
discovery names kinds (v1/Pod); offline, `helm template` and `helm lint` know no cluster and render as
asked (pass --api-versions to `helm template` to check against a cluster's list).
*/}}
{{- define "entra-webhook.requireApis" -}}
{{- $apis := .Capabilities.APIVersions -}}
{{- if $apis.Has "v1/Pod" -}}
{{- if and (eq .Values.certificates.mode "cert-manager") (not ($apis.Has "cert-manager.io/v1")) -}}
{{- fail "certificates.mode=cert-manager needs cert-manager, but this cluster does not serve cert-manager.io/v1: install cert-manager (v1.0+) first, or set certificates.mode=self-managed (the webhook makes and rotates its own certificate)" -}}
{{- end -}}
{{- if not ($apis.Has "monitoring.coreos.com/v1") -}}
{{- if .Values.metrics.serviceMonitor.enabled -}}
{{- fail "metrics.serviceMonitor.enabled=true needs prometheus-operator, but this cluster does not serve monitoring.coreos.com/v1: install prometheus-operator first, or set metrics.serviceMonitor.enabled=false (and scrape the metrics port yourself)" -}}
{{- end -}}
{{- if .Values.metrics.prometheusRule.enabled -}}
{{- fail "metrics.prometheusRule.enabled=true needs prometheus-operator, but this cluster does not serve monitoring.coreos.com/v1: install prometheus-operator first, or set metrics.prometheusRule.enabled=false (manifests/monitoring/alerts.yaml holds the same rules as a plain Prometheus rule file)" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Rules the schema cannot say clearly: each fails `helm install`/`helm template` with the fix. */}}
{{- define "entra-webhook.validate" -}}
{{- include "entra-webhook.requireApis" . -}}
{{- if hasSuffix ":latest" .Values.sidecar.image -}}
{{- fail (printf "sidecar.image: pin the sidecar by a tag other than latest or by a digest (latest changes under running Pods), got %q" (trunc 100 .Values.sidecar.image)) -}}
{{- end -}}
{{- if eq .Values.image.tag "latest" -}}
{{- fail "image.tag: pin the webhook by a release tag or image.digest, not latest" -}}
{{- end -}}
{{- if and .Values.podDisruptionBudget.enabled (ge (int .Values.podDisruptionBudget.minAvailable) (int .Values.replicaCount)) -}}
{{- fail (printf "podDisruptionBudget.minAvailable (%d) must be below replicaCount (%d), or no node running the webhook could ever be drained; raise replicaCount or set podDisruptionBudget.enabled=false" (int .Values.podDisruptionBudget.minAvailable) (int .Values.replicaCount)) -}}
{{- end -}}
{{- end -}}

{{/*
A ServiceMonitor on the `metrics` port of one component's Service:
(dict "root" $ "component" C "name" N "service" SERVICE).
*/}}
{{- define "entra-webhook.serviceMonitor" -}}
# Scrapes every {{ .component }} replica through Service {{ .service }}; prometheus-operator
# names the job after the Service, job="{{ .service }}", which the alerts select.
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "entra-webhook.labels" . | nindent 4 }}
    {{- with .root.Values.metrics.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "entra-webhook.selectorLabels" . | nindent 6 }}
  endpoints:
    - port: metrics
      interval: {{ .root.Values.metrics.serviceMonitor.interval }}
{{- end -}}

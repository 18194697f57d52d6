{{/*
The alerting rules, as the `groups` of a Prometheus rule file. The PrometheusRule template wraps
them, and `make manifests` writes the same groups to manifests/monitoring/alerts.yaml, which
promtool checks and unit-tests (tests/monitoring/).
*/}}
{{- define "entra-webhook.alertGroups" -}}
{{- $rule := .Values.metrics.prometheusRule -}}
{{- $sel := default (printf "job=%q" (include "entra-webhook.fullname" .)) $rule.selector -}}
- name: entra-webhook
  rules:
    - alert: EntraWebhookDown
      expr: absent(up{ {{- $sel -}} } == 1)
      for: 5m
      labels:
        severity: critical
      annotations:
        summary: No entra-webhook replica can be scraped.
        description: >-
          No replica of the webhook has answered a scrape for 5 minutes. With failurePolicy Fail,
          no Pod in an opted-in namespace can be created until one is back: check the Deployment's
          Pods, their readiness and the Service's endpoints.
    - alert: EntraWebhookReplicaUnreachable
      expr: up{ {{- $sel -}} } == 0
      for: 10m
      labels:
        severity: warning
      annotations:
        summary: An entra-webhook replica cannot be scraped.
        description: >-
          {{`{{ $labels.instance }}`}} has not answered a scrape for 10 minutes; the other replica
          carries every admission meanwhile.
    - alert: EntraWebhookAdmissionErrors
      expr: sum by (reason) (increase(entra_webhook_admissions_total{ {{- $sel -}} ,outcome="error"}[10m])) > 0
      labels:
        severity: warning
      annotations:
        summary: The webhook admitted Pods unchanged after an internal error.
        description: >-
          {{`{{ $value | humanize }}`}} Pods in 10 minutes were admitted without injection because of
          an internal error ({{`{{ $labels.reason }}`}}). They run without their sidecar: the
          webhook's log lines with outcome "error" name them.
    - alert: EntraWebhookDenialsRising
      expr: |
        sum(rate(entra_webhook_admissions_total{ {{- $sel -}} ,outcome="denied"}[15m]))
          / sum(rate(entra_webhook_admissions_total{ {{- $sel -}} }[15m])) > {{ $rule.deniedRatio }}
        and sum(increase(entra_webhook_admissions_total{ {{- $sel -}} ,outcome="denied"}[15m])) >= 5
      for: 10m
      labels:
        severity: warning
      annotations:
        summary: A large share of Pod admissions is denied.
        description: >-
          {{`{{ $value | humanizePercentage }}`}} of admissions over 15 minutes were denied. Each
          denial names the Pod and the fix; the owners' EntraInjectionDenied Events and
          entra_webhook_admissions_total by reason show which configuration is wrong.
    - alert: EntraWebhookCertificateExpiresSoon
      expr: entra_webhook_certificate_expiry_seconds{ {{- $sel -}} } < 7 * 86400
      for: 15m
      labels:
        severity: warning
      annotations:
        summary: The webhook's serving certificate expires within 7 days.
        description: >-
          {{`{{ $labels.instance }}`}} serves a certificate that expires in
          {{`{{ $value | humanizeDuration }}`}}. Renewal should have happened long before (self-managed:
          30 days before, cert-manager: at renewBefore): check the webhook's or cert-manager's log.
          Once it expires the API server refuses to call the webhook and opted-in Pods are blocked.
    - alert: EntraWebhookWatchRestarting
      expr: sum by (resource, reason) (increase(entra_webhook_watch_restarts_total{ {{- $sel -}} }[15m])) > 3
      labels:
        severity: warning
      annotations:
        summary: The webhook's watch on its configuration keeps restarting.
        description: >-
          The watch on {{`{{ $labels.resource }}`}} restarted {{`{{ $value | humanize }}`}} times in
          15 minutes ({{`{{ $labels.reason }}`}}): the webhook may answer from stale blueprints and
          identities. Check its connection to the API server and its RBAC.
{{- end -}}

{{/*
The alerting rules, as the `groups` of a Prometheus rule file. The PrometheusRule template wraps
them, and `make manifests` writes the same groups to manifests/monitoring/alerts.yaml, which
promtool checks and unit-tests (tests/monitoring/). The webhook's and the controller's groups share
the rules on scrape targets and watches (helpers at the end); each selects its own job.
*/}}
{{- define "entra-webhook.alertGroups" -}}
{{- $rule := .Values.metrics.prometheusRule -}}
{{- $sel := default (printf "job=%q" (include "entra-webhook.fullname" .)) $rule.selector -}}
- name: entra-webhook
  rules:
    {{- include "entra-webhook.scrapeAlerts" (dict
        "prefix" "EntraWebhook" "selector" $sel "subject" "entra-webhook" "what" "the webhook"
        "minutes" 5 "severity" "critical"
        "down" "With failurePolicy Fail, no Pod in an opted-in namespace can be created until one is back: check the Deployment's Pods, their readiness and the Service's endpoints."
        "unreachable" "the other replica carries every admission meanwhile.") | nindent 4 }}
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
        {{- include "entra-webhook.shareAbove" (dict
            "metric" "entra_webhook_admissions_total" "selector" $sel "match" `outcome="denied"`
            "ratio" $rule.deniedRatio) | nindent 8 }}
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
    {{- include "entra-webhook.watchAlert" (dict
        "prefix" "EntraWebhook" "selector" $sel "metric" "entra_webhook_watch_restarts_total"
        "summary" "The webhook's watch on its configuration keeps restarting."
        "impact" "the webhook may answer from stale blueprints and identities.") | nindent 4 }}
{{- if .Values.controller.enabled }}
{{- $csel := default (printf "job=%q" (include "entra-webhook.controllerMetricsService" .)) $rule.controllerSelector }}
{{- $lease := printf "kubectl get lease %s -n %s" (include "entra-webhook.controllerName" .) .Release.Namespace }}
# The provisioning controller. None of these blocks a Pod that uses a Ready identity: all warnings.
- name: entra-webhook-controller
  rules:
    {{- include "entra-webhook.scrapeAlerts" (dict
        "prefix" "EntraController" "selector" $csel "subject" "entra-webhook controller" "what" "the provisioning controller"
        "minutes" 10 "severity" "warning"
        "down" (printf "%s Check the controller Deployment's Pods, their events and logs, and the endpoints of Service %s." (include "entra-webhook.controllerStalled" .) (include "entra-webhook.controllerMetricsService" .))
        "unreachable" "while it is down, no replica stands by to take over from the leader (and if it led, the other one has taken over): check that Pod's events and log.") | nindent 4 }}
    - alert: EntraControllerNoLeader
      expr: sum(entra_controller_leader{ {{- $csel -}} }) == 0
      for: 5m
      labels:
        severity: warning
      annotations:
        summary: No entra-webhook controller replica holds the Lease.
        description: >-
          The controller's replicas answer scrapes, but none has led for 5 minutes.
          {{- include "entra-webhook.controllerStalled" . | nindent 10 }}
          The replicas' logs say why none takes the Lease (its Role in {{ .Release.Namespace }}, the
          API server's reachability);
          `{{ $lease }} -o yaml`
          shows the last holder.
    - alert: EntraControllerMultipleLeaders
      expr: sum(entra_controller_leader{ {{- $csel -}} }) > 1
      for: 5m
      labels:
        severity: warning
      annotations:
        summary: More than one entra-webhook controller replica leads.
        description: >-
          {{`{{ $value }}`}} replicas have reported holding the Lease for 5 minutes. Creates are guarded
          by each resource's resourceVersion, so no duplicate follows, but the replicas contend for every
          write. Does the selector match two installations? Otherwise
          `{{ $lease }}`
          names the holder: delete the other leading Pod, it restarts as a standby.
    - alert: EntraControllerIdentitiesNotReady
      # The leader alone counts identities: max over replicas and 5 minutes bridges a change of leader.
      expr: |
        max by (ready, reason) (
          max_over_time(entra_controller_agent_identities{ {{- $csel -}} ,ready!="True"}[5m])
        ) > 0
      for: {{ $rule.identityNotReadyFor }}
      labels:
        severity: warning
      annotations:
        summary: Managed AgentIdentities are not Ready ({{`{{ $labels.reason }}`}}).
        description: >-
          {{`{{ $value }}`}} managed AgentIdentities have been Ready={{`{{ $labels.ready }}`}} with reason
          {{`{{ $labels.reason }}`}} for {{ $rule.identityNotReadyFor }}; Pods naming them are denied.
          {{- include "entra-webhook.folded" (include "entra-webhook.reasonAdvice" .) | nindent 10 }}
    - alert: EntraControllerReconcilesFailing
      # Left out: waits that are no failure, reasons with an alert of their own (Graph, the token
      # endpoint), and reasons that not-Ready identities explain (EntraControllerIdentitiesNotReady).
      expr: |
        sum by (kind, reason) (
          increase(entra_controller_reconciles_total{ {{- $csel -}} ,result!="success",reason!~"{{ include "entra-webhook.ownedReasons" . }}"}[10m])
        ) > 0
        unless on (reason) max by (reason) (entra_controller_agent_identities{ {{- $csel -}} ,ready!="True"})
      for: {{ $rule.reconcileFailingFor }}
      labels:
        severity: warning
      annotations:
        summary: Reconciles of {{`{{ $labels.kind }}`}} keep failing with {{`{{ $labels.reason }}`}}.
        description: >-
          {{`{{ $labels.kind }}`}} reconciles have failed with {{`{{ $labels.reason }}`}} for
          {{ $rule.reconcileFailingFor }} ({{`{{ $value | humanize }}`}} in the last 10 minutes): what the spec
          asks is not done (an AgentIdentity's Synced condition names the reason; identities already
          Ready keep working).
          {{- include "entra-webhook.folded" (include "entra-webhook.reasonAdvice" .) | nindent 10 }}
    - alert: EntraControllerGraphThrottled
      expr: |
        {{- include "entra-webhook.shareAbove" (dict
            "metric" "entra_controller_graph_requests_total" "selector" $csel "match" `status="429"`
            "ratio" $rule.graphThrottledRatio) | nindent 8 }}
      for: 15m
      labels:
        severity: warning
      annotations:
        summary: Microsoft Graph is throttling the controller.
        description: >-
          {{`{{ $value | humanizePercentage }}`}} of the controller's Graph requests over 15 minutes were
          answered 429. It waits as long as Retry-After asks, so provisioning slows down but nothing is
          lost. Graph throttles per app and tenant: many identities under one blueprint, each checked
          every --resync-seconds (600 by default), add up with the tenant's other callers. Raise
          --resync-seconds (controller.extraArgs) or spread the identities over more blueprints.
    - alert: EntraControllerGraphUnreachable
      expr: |
        sum(increase(entra_controller_graph_requests_total{ {{- $csel -}} ,status=~"error|5.."}[10m])) > 0
        unless sum(increase(entra_controller_graph_requests_total{ {{- $csel -}} ,status!~"error|5.."}[10m])) > 0
      for: 10m
      labels:
        severity: warning
      annotations:
        summary: The controller gets no answer from Microsoft Graph.
        description: >-
          For 10 minutes every Graph request of the controller failed without an answer or with a 5xx
          ({{`{{ $value | humanize }}`}} in the last 10 minutes).
          {{- include "entra-webhook.controllerStalled" . | nindent 10 }}
          Check the way out from the controller's Pods to {{ .Values.controller.graphUrl }} (DNS, proxy,
          NetworkPolicy, the CA of --ca-file) and Microsoft Graph's service health.
    - alert: EntraControllerTokensFailing
      expr: |
        sum by (result) (
          increase(entra_controller_token_acquisitions_total{ {{- $csel -}} ,result=~"refused|unreachable"}[10m])
        ) > 0
      for: {{ $rule.reconcileFailingFor }}
      labels:
        severity: warning
      annotations:
        summary: The controller cannot get Graph tokens for a blueprint ({{`{{ $labels.result }}`}}).
        description: >-
          {{`{{ $value | humanize }}`}} token requests in the last 10 minutes were {{`{{ $labels.result }}`}},
          for {{ $rule.reconcileFailingFor }}. {{`{{ if eq $labels.result "refused" -}}`}} Entra refused a
          blueprint's credential, which its agents' sidecars may share: the AgentIdentities' Ready or
          Synced reason is the AADSTS code (`kubectl get agentidentities -A -o wide`, and their
          Warning Events).
          {{- include "entra-webhook.aadstsAdvice" . | nindent 10 }}
          {{`{{- else -}}`}} The token endpoint could not be reached: check the way out from the
          controller's Pods to the blueprints' instance (login.microsoftonline.com unless
          spec.instance or --authority-host says otherwise) and --token-file.{{`{{- end }}`}}
    {{- include "entra-webhook.watchAlert" (dict
        "prefix" "EntraController" "selector" $csel "metric" "entra_controller_watch_restarts_total"
        "summary" "The controller's watch on AgentIdentities or AgentBlueprints keeps restarting."
        "impact" "the controller may act late on new, changed and deleted resources.") | nindent 4 }}
{{- end }}
{{- end -}}

{{/*
A component's scrape targets: none answers for `minutes` (Down), or one does not for 10 minutes.
(dict "prefix" P "selector" SEL "subject" S "what" W "minutes" N "severity" V "down" TEXT "unreachable" TEXT)
*/}}
{{- define "entra-webhook.scrapeAlerts" -}}
- alert: {{ .prefix }}Down
  expr: absent(up{ {{- .selector -}} } == 1)
  for: {{ .minutes }}m
  labels:
    severity: {{ .severity }}
  annotations:
    summary: No {{ .subject }} replica can be scraped.
    description: >-
      {{- include "entra-webhook.folded" (printf "No replica of %s has answered a scrape for %d minutes. %s" .what .minutes .down) | nindent 6 }}
- alert: {{ .prefix }}ReplicaUnreachable
  expr: up{ {{- .selector -}} } == 0
  for: 10m
  labels:
    severity: warning
  annotations:
    summary: An {{ .subject }} replica cannot be scraped.
    description: >-
      {{- include "entra-webhook.folded" (printf "{{ $labels.instance }} has not answered a scrape for 10 minutes; %s" .unreachable) | nindent 6 }}
{{- end -}}

{{/* A watch restarting more than 3 times in 15 minutes: (dict "prefix" P "selector" SEL "metric" M "summary" S "impact" TEXT). */}}
{{- define "entra-webhook.watchAlert" -}}
- alert: {{ .prefix }}WatchRestarting
  expr: sum by (resource, reason) (increase({{ .metric }}{ {{- .selector -}} }[15m])) > 3
  labels:
    severity: warning
  annotations:
    summary: {{ .summary }}
    description: >-
      {{- include "entra-webhook.folded" (printf "The watch on {{ $labels.resource }} restarted {{ $value | humanize }} times in 15 minutes ({{ $labels.reason }}): %s Check its connection to the API server and its RBAC." .impact) | nindent 6 }}
{{- end -}}

{{/*
The share of a counter's increase over 15 minutes that matches `match`, above `ratio`, with at least
5 such: (dict "metric" M "selector" SEL "match" LABELS "ratio" R).
*/}}
{{- define "entra-webhook.shareAbove" -}}
sum(rate({{ .metric }}{ {{- .selector -}} ,{{ .match }}}[15m]))
  / sum(rate({{ .metric }}{ {{- .selector -}} }[15m])) > {{ .ratio }}
and sum(increase({{ .metric }}{ {{- .selector -}} ,{{ .match }}}[15m])) >= 5
{{- end -}}

{{/* What the controller leaves undone while it is down, leaderless or cut off from Graph. */}}
{{- define "entra-webhook.controllerStalled" -}}
Managed AgentIdentities are neither created, updated nor deleted in Entra meanwhile: new ones stay
not Ready and Pods naming them are denied, deletions wait on the finalizer; identities already Ready
keep working.
{{- end -}}

{{/*
Reconcile reasons that EntraControllerReconcilesFailing leaves to other alerts or to no alert: the
waits (a create on its way, replication, a deletion waiting for a late create), write conflicts
(read again at once), and Graph's and the token endpoint's failures.
*/}}
{{- define "entra-webhook.ownedReasons" -}}
Creating|Replicating|Deleting|Conflict|TooManyRequests|TransportError|TokenEndpointUnreachable|AADSTS.*
{{- end -}}

{{/* What to do about a refused token, by its AADSTS code. */}}
{{- define "entra-webhook.aadstsAdvice" -}}
AADSTS700213, 700211, 700212 or 70021: add the federated credential the AgentBlueprint's status
lists; AADSTS7000215 or 7000222: the client secret is wrong or expired; AADSTS700016 or 90002: the
blueprint's clientId or tenantId is wrong.
{{- end -}}

{{/*
What to do about a condition reason ($labels.reason), as a Prometheus template: the table of
docs/troubleshooting/conditions.md in short.
*/}}
{{- define "entra-webhook.reasonAdvice" -}}
{{`
{{ if eq $labels.reason "AgentIdentity_LimitExceeded" -}}
  The blueprint has its 250 agent identities, soft-deleted ones included: delete unused ones, or
  purge soft-deleted ones (Graph: DELETE /directory/deletedItems/ID).
{{- else if eq $labels.reason "AgentIdentity_AgentBlueprintPrincipalDoesNotExist" -}}
  The blueprint has no service principal in the tenant: an Entra admin creates it once.
{{- else if match "^AADSTS" $labels.reason -}}
  Entra refused the blueprint's token.
`}} {{ include "entra-webhook.aadstsAdvice" . }} {{`
{{- else if eq $labels.reason "SecretAccessDenied" -}}
  The controller may not read the blueprint's client secret: apply the Role and RoleBinding that the
  condition's message prints (that one Secret, by name).
{{- else if match "^Secret" $labels.reason -}}
  The blueprint's client-secret Secret or its key is missing: create it.
{{- else if match "^Blueprint" $labels.reason -}}
  The AgentBlueprint they name is missing or incomplete (it needs tenantId, clientId and credential).
{{- else if eq $labels.reason "NotReported" -}}
  The controller has not reconciled them: is a replica leading (EntraControllerNoLeader)?
{{- else if match "^API" $labels.reason -}}
  The API server refused the controller's request (API403: its RBAC lacks a rule: apply this
  version's chart or manifests); its log names the object.
{{- else if eq $labels.reason "InternalError" -}}
  An unexpected error: the controller's log has the traceback; please report it.
{{- else -}}
  The condition's message on each of them says what to do.
{{- end }}
`}} `kubectl get agentidentities -A -o wide` lists them by reason;
docs/troubleshooting/conditions.md says what each reason means.
{{- end -}}

{{/*
Text for a folded block scalar (>-): runs of whitespace made one space, wrapped at 96 columns, but
never inside a Prometheus template action ({{ ... }}).
*/}}
{{- define "entra-webhook.folded" -}}
{{- $text := regexReplaceAll "\\s+" (trim .) " " -}}
{{- range regexFindAll "\\{\\{[^}]*\\}\\}" $text -1 -}}
{{- $text = replace . (replace " " "\u00a0" .) $text -}}
{{- end -}}
{{- wrap 96 $text | replace "\u00a0" " " -}}
{{- end -}}

{{/* Chart name, truncated to 63 characters (DNS label). */}}
{{- define "k8s-vectordb-sync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart unless the release name already contains the chart name. */}}
{{- define "k8s-vectordb-sync.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "k8s-vectordb-sync.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "k8s-vectordb-sync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "k8s-vectordb-sync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "k8s-vectordb-sync.labels" -}}
helm.sh/chart: {{ include "k8s-vectordb-sync.chart" . }}
{{ include "k8s-vectordb-sync.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "k8s-vectordb-sync.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "k8s-vectordb-sync.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "k8s-vectordb-sync.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) }}
{{- end }}
{{- end }}

{{/* Port of a bind address ":8081", "0.0.0.0:8081", "[::]:8081"; fails on anything else or port 0. */}}
{{- define "k8s-vectordb-sync.port" -}}
{{- $address := toString .address }}
{{- $port := regexFind "[0-9]+$" $address }}
{{- if or (not (regexMatch "^(\\[[0-9a-fA-F:.]*\\]|[^:\\[\\]]*):[0-9]+$" $address)) (eq (int $port) 0) (gt (int $port) 65535) }}
{{- fail (printf "%s: %q is not a [host]:port address with a port from 1 to 65535 (the probes and the Service need a fixed port)" .name $address) }}
{{- end }}
{{- int $port }}
{{- end }}

{{- define "k8s-vectordb-sync.healthPort" -}}
{{- include "k8s-vectordb-sync.port" (dict "name" "config.healthProbeBindAddress" "address" .Values.config.healthProbeBindAddress) }}
{{- end }}

{{- define "k8s-vectordb-sync.apiPort" -}}
{{- include "k8s-vectordb-sync.port" (dict "name" "config.apiBindAddress" "address" .Values.config.apiBindAddress) }}
{{- end }}

{{/*
A value as an environment variable's text: whole numbers without exponent (YAML numbers arrive as
float64, and 300000 would otherwise print as 3e+05), booleans as true/false, nil as "".
*/}}
{{- define "k8s-vectordb-sync.envText" -}}
{{- if kindIs "invalid" . }}
{{- else if kindIs "float64" . }}
{{- if eq (float64 (int64 .)) . }}{{ int64 . }}{{ else }}{{ . }}{{ end }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}

{{- define "k8s-vectordb-sync.tokenFile" -}}
{{- if .Values.receiverToken.file }}
{{- .Values.receiverToken.file }}
{{- else if .Values.receiverToken.existingSecret }}
{{- printf "/var/run/secrets/k8s-vectordb-sync/receiver-token/%s" .Values.receiverToken.key }}
{{- end }}
{{- end }}

{{- define "k8s-vectordb-sync.headersFile" -}}
{{- if .Values.receiverHeaders.file }}
{{- .Values.receiverHeaders.file }}
{{- else if .Values.receiverHeaders.existingSecret }}
{{- printf "/var/run/secrets/k8s-vectordb-sync/receiver-headers/%s" .Values.receiverHeaders.key }}
{{- end }}
{{- end }}

{{/* The label matchers that pick this release's series in the PrometheusRule. */}}
{{- define "k8s-vectordb-sync.ruleSelector" -}}
{{- with .Values.metrics.prometheusRule.selector }}
{{- . }}
{{- else }}
{{- printf "namespace=\"%s\",job=\"%s\"" .Release.Namespace (include "k8s-vectordb-sync.fullname" .) }}
{{- end }}
{{- end }}

{{- define "k8s-vectordb-sync.resyncTokenFile" -}}
{{- if .Values.resyncAuth.file }}
{{- .Values.resyncAuth.file }}
{{- else if .Values.resyncAuth.existingSecret }}
{{- printf "/var/run/secrets/k8s-vectordb-sync/resync-token/%s" .Values.resyncAuth.key }}
{{- end }}
{{- end }}

{{/* The resync authentication the controller will use: RESYNC_AUTH, or what it defaults to. */}}
{{- define "k8s-vectordb-sync.resyncAuthMode" -}}
{{- $file := include "k8s-vectordb-sync.resyncTokenFile" . }}
{{- $mode := default (ternary "token" "kubernetes" (ne $file "")) .Values.resyncAuth.mode }}
{{- if not (has $mode (list "kubernetes" "token" "none")) }}
{{- fail (printf "resyncAuth.mode %q: expected kubernetes, token or none" $mode) }}
{{- else if and (eq $mode "token") (eq $file "") }}
{{- fail "resyncAuth.mode=token needs resyncAuth.existingSecret or resyncAuth.file" }}
{{- else if and (ne $mode "token") (ne $file "") }}
{{- fail (printf "resyncAuth.existingSecret/file is set but resyncAuth.mode is %s: the token would be ignored" $mode) }}
{{- end }}
{{- $mode }}
{{- end }}

{{- define "k8s-vectordb-sync.caFile" -}}
{{- if .Values.receiverCA.file }}
{{- .Values.receiverCA.file }}
{{- else if or .Values.receiverCA.existingConfigMap .Values.receiverCA.existingSecret }}
{{- printf "/etc/k8s-vectordb-sync/receiver-ca/%s" .Values.receiverCA.key }}
{{- end }}
{{- end }}

{{/* The checkpoint's first ConfigMap: checkpoint.name, else <fullname>-checkpoint. */}}
{{- define "k8s-vectordb-sync.checkpointName" -}}
{{- default (printf "%s-checkpoint" (include "k8s-vectordb-sync.fullname" .)) .Values.checkpoint.name }}
{{- end }}

{{- define "k8s-vectordb-sync.leaseNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.namespace }}
{{- end }}

{{/*
Every variable of the controller's configuration (src/config/Variables.ts) and the value it
takes from values.yaml, in the reference's order. Empty values are left out of the pod, so the
controller's own default applies. test/integration/chart.test.ts compares the names with the
reference.
*/}}
{{- define "k8s-vectordb-sync.configEnv" -}}
{{- $c := .Values.config }}
{{- $le := .Values.leaderElection }}
{{- $vars := list
  (list "INSTANCES_ENDPOINT" $c.instancesEndpoint)
  (list "REST_ENDPOINT" $c.restEndpoint)
  (list "CAPABILITIES_ENDPOINT" $c.capabilitiesEndpoint)
  (list "DRY_RUN" $c.dryRun)
  (list "DEBOUNCE_WINDOW_MS" $c.debounceWindowMs)
  (list "DEBOUNCE_MAX_WAIT_MS" $c.debounceMaxWaitMs)
  (list "BATCH_FLUSH_INTERVAL_MS" $c.batchFlushIntervalMs)
  (list "BATCH_MAX_SIZE" $c.batchMaxSize)
  (list "BATCH_MAX_BYTES" $c.batchMaxBytes)
  (list "RESYNC_INTERVAL_MIN" $c.resyncIntervalMin)
  (list "SHUTDOWN_TIMEOUT_MS" $c.shutdownTimeoutMs)
  (list "SEND_TIMEOUT_MS" $c.sendTimeoutMs)
  (list "RETRY_INITIAL_BACKOFF_MS" $c.retryInitialBackoffMs)
  (list "RETRY_MAX_BACKOFF_MS" $c.retryMaxBackoffMs)
  (list "WATCH_RESOURCE_TYPES" $c.watchResourceTypes)
  (list "EXCLUDE_RESOURCE_TYPES" $c.excludeResourceTypes)
  (list "WATCH_NAMESPACES" $c.watchNamespaces)
  (list "EXCLUDE_NAMESPACES" $c.excludeNamespaces)
  (list "LABEL_SELECTOR" $c.labelSelector)
  (list "API_BIND_ADDRESS" $c.apiBindAddress)
  (list "HEALTH_PROBE_BIND_ADDRESS" $c.healthProbeBindAddress)
  (list "RESYNC_AUTH" .Values.resyncAuth.mode)
  (list "RESYNC_TOKEN_FILE" (include "k8s-vectordb-sync.resyncTokenFile" .))
  (list "RESYNC_MIN_INTERVAL_MS" $c.resyncMinIntervalMs)
  (list "LOG_LEVEL" $c.logLevel)
  (list "LOG_FORMAT" $c.logFormat)
  (list "ENDPOINT_TOKEN_FILE" (include "k8s-vectordb-sync.tokenFile" .))
  (list "ENDPOINT_CA_FILE" (include "k8s-vectordb-sync.caFile" .))
  (list "LEADER_ELECTION" $le.enabled)
  (list "LEADER_ELECTION_ID" $le.id)
  (list "LEADER_ELECTION_NAMESPACE" (ternary (include "k8s-vectordb-sync.leaseNamespace" .) "" (eq (toString $le.enabled) "true")))
  (list "LEADER_ELECTION_LEASE_DURATION_MS" $le.leaseDurationMs)
  (list "LEADER_ELECTION_RENEW_DEADLINE_MS" $le.renewDeadlineMs)
  (list "LEADER_ELECTION_RETRY_PERIOD_MS" $le.retryPeriodMs)
  (list "DISCOVERY_INTERVAL_MS" $c.discoveryIntervalMs)
  (list "LIST_CONCURRENCY" $c.listConcurrency)
  (list "WATCH_LIST" $c.watchList)
  (list "API_SERVER_MAX_CONNECTIONS" $c.apiServerMaxConnections)
  (list "ANNOTATION_KEYS" $c.annotationKeys)
  (list "LABEL_KEYS" $c.labelKeys)
  (list "ENDPOINT_HEADERS_FILE" (include "k8s-vectordb-sync.headersFile" .))
  (list "CHECKPOINT" .Values.checkpoint.enabled)
  (list "CHECKPOINT_NAME" (include "k8s-vectordb-sync.checkpointName" .))
  (list "CHECKPOINT_PART_BYTES" .Values.checkpoint.partBytes)
}}
{{- range $vars }}
{{- $text := include "k8s-vectordb-sync.envText" (index . 1) }}
{{- if ne $text "" }}
- name: {{ index . 0 }}
  value: {{ $text | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* Pod grace period: derived from the shutdown timeout, or an explicit value that must exceed it. */}}
{{- define "k8s-vectordb-sync.terminationGracePeriodSeconds" -}}
{{- $raw := .Values.config.shutdownTimeoutMs }}
{{- $shutdownMs := 20000 }}{{/* the controller's default, when the value is left empty */}}
{{- if not (or (kindIs "invalid" $raw) (eq (toString $raw) "")) }}{{ $shutdownMs = int64 $raw }}{{ end }}
{{- $shutdownS := div (add $shutdownMs 999) 1000 }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $shutdownS (int64 .Values.terminationGracePeriodExtraSeconds) }}
{{- else }}
{{- $explicit := int64 .Values.terminationGracePeriodSeconds }}
{{- if le $explicit $shutdownS }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be greater than config.shutdownTimeoutMs (%d ms): the pod would be killed during its final flush" $explicit $shutdownMs) }}
{{- end }}
{{- $explicit }}
{{- end }}
{{- end }}

{{/* A Kubernetes memory quantity (512Mi, 1Gi, 536870912, 600M) in MiB, rounded down; 0 when empty. */}}
{{- define "k8s-vectordb-sync.mebibytes" -}}
{{- $q := toString . | trim }}
{{- $units := dict "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 }}
{{- $bytes := 0 }}
{{- if eq $q "" }}
{{- else if regexMatch "^[0-9]+$" $q }}{{ $bytes = int64 $q }}
{{- else }}
{{- $unit := regexFind "[A-Za-z]+$" $q }}
{{- if not (hasKey $units $unit) }}{{ fail (printf "resources.limits.memory %q: expected a quantity such as 512Mi or 1Gi" $q) }}{{ end }}
{{- $bytes = mul (int64 (trimSuffix $unit $q)) (get $units $unit) }}
{{- end }}
{{- div $bytes 1048576 }}
{{- end }}

{{/*
Node's heap cap in MiB: maxHeapMb when set, else heapPercentOfMemoryLimit of the container's memory
limit (the rest is Node itself, its code and its buffers), else nothing (Node's default).
*/}}
{{- define "k8s-vectordb-sync.maxHeapMb" -}}
{{- if .Values.maxHeapMb }}
{{- int64 .Values.maxHeapMb }}
{{- else }}
{{- $limit := include "k8s-vectordb-sync.mebibytes" (dig "limits" "memory" "" (.Values.resources | default dict)) | int64 }}
{{- if gt $limit 0 }}{{ div (mul $limit (int64 .Values.heapPercentOfMemoryLimit)) 100 }}{{ else }}0{{ end }}
{{- end }}
{{- end }}

{{/* Node's memory flags: the heap cap, and the young generation's semi-space size. */}}
{{- define "k8s-vectordb-sync.nodeOptions" -}}
{{- $flags := list }}
{{- $heapMb := include "k8s-vectordb-sync.maxHeapMb" . | int64 }}
{{- if gt $heapMb 0 }}{{ $flags = append $flags (printf "--max-old-space-size=%d" $heapMb) }}{{ end }}
{{- if .Values.semiSpaceMb }}{{ $flags = append $flags (printf "--max-semi-space-size=%d" (int64 .Values.semiSpaceMb)) }}{{ end }}
{{- join " " $flags }}
{{- end }}

{{/*
Names, labels, images and in-cluster URLs shared by every template.
*/}}

{{- define "smart-routing.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name prefix of every resource: <release>-<chart>, or the release name if it already contains
the chart name. Kept short enough that "<fullname>-log-collector" fits a 63-character DNS label.
*/}}
{{- define "smart-routing.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "smart-routing.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels of one component. Call with (dict "root" $ "component" "worker").
*/}}
{{- define "smart-routing.selectorLabels" -}}
app.kubernetes.io/name: {{ include "smart-routing.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
All labels of one component. Call with (dict "root" $ "component" "worker").
*/}}
{{- define "smart-routing.labels" -}}
helm.sh/chart: {{ include "smart-routing.chart" .root }}
{{ include "smart-routing.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: smart-routing
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{/*
Image reference of one of our images: [registry/]repository:tag, the tag defaulting to image.tag,
then to the chart's appVersion. Call with (dict "root" $ "image" .Values.dispatcher.image).
*/}}
{{- define "smart-routing.image" -}}
{{- $registry := .root.Values.image.registry | trimSuffix "/" }}
{{- $tag := .image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion }}
{{- if $registry }}
{{- printf "%s/%s:%s" $registry .image.repository $tag }}
{{- else }}
{{- printf "%s:%s" .image.repository $tag }}
{{- end }}
{{- end }}

{{- define "smart-routing.imagePullPolicy" -}}
{{- .image.pullPolicy | default .root.Values.image.pullPolicy }}
{{- end }}

{{- define "smart-routing.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "smart-routing.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The Secret holding WORKER_TOKEN, API_KEYS and HF_TOKEN.
*/}}
{{- define "smart-routing.secretName" -}}
{{- .Values.auth.existingSecret | default (printf "%s-auth" (include "smart-routing.fullname" .)) }}
{{- end }}

{{- define "smart-routing.modelRepositoryClaim" -}}
{{- .Values.modelRepository.pvc.existingClaim | default (printf "%s-models" (include "smart-routing.fullname" .)) }}
{{- end }}

{{/*
In-cluster URLs the services use to find each other.
*/}}
{{- define "smart-routing.dispatcherUrl" -}}
{{- if include "smart-routing.redisUrl" . }}
{{- /* Several replicas: the headless Service's name resolves to every replica's pod IP. */}}
{{- printf "ws://%s-dispatcher-workers:%d" (include "smart-routing.fullname" .) (int .Values.dispatcher.port) }}
{{- else }}
{{- printf "ws://%s-dispatcher:%d" (include "smart-routing.fullname" .) (int .Values.dispatcher.service.port) }}
{{- end }}
{{- end }}

{{/*
The dispatchers' REDIS_URL: the chart's Redis StatefulSet, or redis.url; empty without Redis.
*/}}
{{- define "smart-routing.redisUrl" -}}
{{- if .Values.redis.enabled }}
{{- printf "redis://%s-redis:%d" (include "smart-routing.fullname" .) (int .Values.redis.port) }}
{{- else if .Values.redis.url }}
{{- .Values.redis.url }}
{{- end }}
{{- end }}

{{/*
Dispatcher replicas: dispatcher.replicas, else 2 with Redis and 1 without.
*/}}
{{- define "smart-routing.dispatcherReplicas" -}}
{{- if .Values.dispatcher.replicas }}
{{- .Values.dispatcher.replicas | int }}
{{- else if include "smart-routing.redisUrl" . }}2
{{- else }}1
{{- end }}
{{- end }}

{{- define "smart-routing.logCollectorUrl" -}}
{{- printf "http://%s-log-collector:%d" (include "smart-routing.fullname" .) (int .Values.logCollector.port) }}
{{- end }}

{{- define "smart-routing.uploaderUrl" -}}
{{- printf "http://%s-uploader:%d" (include "smart-routing.fullname" .) (int .Values.uploader.port) }}
{{- end }}

{{/*
Whether the uploader is deployed: it writes into the PVC, so not with an S3 repository.
*/}}
{{- define "smart-routing.uploaderEnabled" -}}
{{- if and .Values.uploader.enabled (eq .Values.modelRepository.type "pvc") }}true{{ end }}
{{- end }}

{{/*
LOG_LEVEL and LOG_COLLECTOR_URL, set on every service. Call with the root context.
*/}}
{{- define "smart-routing.logEnv" -}}
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- if .Values.logCollector.enabled }}
- name: LOG_COLLECTOR_URL
  value: {{ include "smart-routing.logCollectorUrl" . | quote }}
{{- end }}
{{- end }}

{{/*
Probe timing from values (the path and port are set by the template). Call with a probe values map.
*/}}
{{- define "smart-routing.probeTiming" -}}
initialDelaySeconds: {{ .initialDelaySeconds | default 0 | int }}
periodSeconds: {{ .periodSeconds | int }}
timeoutSeconds: {{ .timeoutSeconds | int }}
failureThreshold: {{ .failureThreshold | int }}
{{- end }}

{{/*
Checks that the schema cannot express. Rendered (empty) by the dispatcher template.
*/}}
{{- define "smart-routing.validate" -}}
{{- if and (eq .Values.modelRepository.type "s3") (not .Values.modelRepository.s3.uri) }}
{{- fail "modelRepository.s3.uri is required when modelRepository.type is s3" }}
{{- end }}
{{- if and .Values.uploader.enabled (eq .Values.modelRepository.type "s3") }}
{{- fail "uploader.enabled needs modelRepository.type pvc: the uploader writes into the PVC" }}
{{- end }}
{{- if and .Values.redis.enabled .Values.redis.url }}
{{- fail "set redis.enabled (the chart runs Redis) or redis.url (your own Redis), not both" }}
{{- end }}
{{- if and (gt (int (include "smart-routing.dispatcherReplicas" .)) 1) (not (include "smart-routing.redisUrl" .)) }}
{{- fail "dispatcher.replicas > 1 needs a Redis the replicas share: redis.enabled or redis.url" }}
{{- end }}
{{- $grace := add .Values.dispatcher.preStopSleepSeconds (div .Values.dispatcher.shutdownGraceMs 1000) }}
{{- if lt (int .Values.dispatcher.terminationGracePeriodSeconds) (int $grace) }}
{{- fail (printf "dispatcher.terminationGracePeriodSeconds (%v) must cover preStopSleepSeconds + shutdownGraceMs (%v s)" .Values.dispatcher.terminationGracePeriodSeconds $grace) }}
{{- end }}
{{- end }}

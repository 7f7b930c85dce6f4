{{/* vim: set filetype=mustache: */}}

{{/*
Chart name, truncated to 63 characters (the DNS-1123 label limit).
*/}}
{{- define "inference-service.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Fully qualified app name. If the release name already contains the chart name it
is used as is.
*/}}
{{- define "inference-service.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Chart name and version, as used by the helm.sh/chart label.
*/}}
{{- define "inference-service.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Metadata labels: the full app.kubernetes.io/* set, helm.sh/chart and
.Values.commonLabels. The standard labels win over commonLabels, so a common
label can never change what the selectors match.
*/}}
{{- define "inference-service.labels" -}}
{{- $standard := dict
  "app.kubernetes.io/name" (include "inference-service.name" .)
  "app.kubernetes.io/instance" .Release.Name
  "app.kubernetes.io/managed-by" .Release.Service
  "app.kubernetes.io/component" "inference"
  "app.kubernetes.io/part-of" "tizi"
  "helm.sh/chart" (include "inference-service.chart" .)
-}}
{{- with .Chart.AppVersion -}}
{{- $_ := set $standard "app.kubernetes.io/version" (. | replace "+" "_") -}}
{{- end -}}
{{- toYaml (merge $standard (deepCopy (default (dict) .Values.commonLabels))) -}}
{{- end -}}

{{/*
Selector labels: name and instance ONLY. Selectors are immutable on a
Deployment; anything else here (version, chart) would break `helm upgrade`.
*/}}
{{- define "inference-service.selectorLabels" -}}
app.kubernetes.io/name: {{ include "inference-service.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
Annotations every chart-owned object carries: .Values.commonAnnotations plus an
optional "extra" map (which wins). Renders nothing when both are empty.
Usage: {{- with include "inference-service.annotations" (dict "extra" $map "context" $) }}
*/}}
{{- define "inference-service.annotations" -}}
{{- $all := merge (deepCopy (default (dict) .extra)) (deepCopy (default (dict) .context.Values.commonAnnotations)) -}}
{{- if $all -}}
{{- toYaml $all -}}
{{- end -}}
{{- end -}}

{{/*
Name of the ServiceAccount the pods run as.
*/}}
{{- define "inference-service.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "inference-service.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
Container image reference. A digest, when set, pins the image and replaces the tag
(repository@sha256:...); otherwise repository:tag, the tag defaulting to appVersion.
*/}}
{{- define "inference-service.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion (toString .Values.image.tag)) -}}
{{- end -}}
{{- end -}}

{{/*
True ("true") when the image is referenced by a rolling tag without a digest.
*/}}
{{- define "inference-service.rollingTag" -}}
{{- $tag := default .Chart.AppVersion (toString .Values.image.tag) | lower -}}
{{- if and (not .Values.image.digest) (has $tag (list "latest" "main" "master" "stable" "edge" "nightly" "dev" "develop" "head")) -}}
true
{{- end -}}
{{- end -}}

{{/*
Name of the Secret holding the API keys; fails when it is not given.
*/}}
{{- define "inference-service.apiKeysSecret" -}}
{{- required "apiKeys.existingSecret is required: create a Secret holding one API key per entry (for example `kubectl create secret generic tizi-api-keys --from-literal=default=$(openssl rand -hex 32)`) and set apiKeys.existingSecret to its name" .Values.apiKeys.existingSecret -}}
{{- end -}}

{{/*
Name of the chart-owned ConfigMap holding the model metadata and .Values.env.
*/}}
{{- define "inference-service.configName" -}}
{{- printf "%s-env" (include "inference-service.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Environment rendered into the chart-owned ConfigMap: .Values.env, then the model
metadata (which wins over a same-named entry in .Values.env).
*/}}
{{- define "inference-service.configData" -}}
{{- $data := dict -}}
{{- range $k, $v := .Values.env -}}
{{- $_ := set $data $k (toString $v) -}}
{{- end -}}
{{- $_ := set $data "TIZI_MODEL_NAME" (toString .Values.model.name) -}}
{{- $_ := set $data "TIZI_MODEL_SOURCE" (toString .Values.model.source) -}}
{{- $_ := set $data "TIZI_MODEL_LANGUAGES" (join "," .Values.model.languages) -}}
{{- toYaml $data -}}
{{- end -}}

{{/*
Pod annotations: config checksum (restarts pods / creates a new Knative revision
when the chart-owned config changes), model metadata, then .Values.podAnnotations.
*/}}
{{- define "inference-service.podAnnotations" -}}
{{- $ann := dict "checksum/config" (include (print $.Template.BasePath "/configmap.yaml") . | sha256sum) -}}
{{- with .Values.model.name }}{{ $_ := set $ann "tizi.ma/model-name" (toString .) }}{{ end -}}
{{- with .Values.model.source }}{{ $_ := set $ann "tizi.ma/model-source" (toString .) }}{{ end -}}
{{- with .Values.model.languages }}{{ $_ := set $ann "tizi.ma/model-languages" (join "," .) }}{{ end -}}
{{- if .Values.gateway.enabled }}
{{- $_ := set $ann "prometheus.io/scrape" "true" -}}
{{- $_ := set $ann "prometheus.io/port" (toString .Values.gateway.metricsPort) -}}
{{- $_ := set $ann "prometheus.io/path" "/metrics" -}}
{{- end -}}
{{- toYaml (merge $ann (deepCopy (default (dict) .Values.podAnnotations))) -}}
{{- end -}}

{{/*
Pod labels: metadata labels plus .Values.podLabels (the selector labels win).
*/}}
{{- define "inference-service.podLabels" -}}
{{- $labels := include "inference-service.labels" . | fromYaml -}}
{{- $selector := include "inference-service.selectorLabels" . | fromYaml -}}
{{- toYaml (merge $selector $labels (deepCopy (default (dict) .Values.podLabels))) -}}
{{- end -}}

{{/*
Container resources; with gpu.count > 0 the GPU resource is added to both
limits and requests (extended resources must be equal in both).
*/}}
{{- define "inference-service.resources" -}}
{{- $res := deepCopy (default (dict) .Values.resources) -}}
{{- if gt (int .Values.gpu.count) 0 -}}
{{- $limits := default (dict) (get $res "limits") -}}
{{- $requests := default (dict) (get $res "requests") -}}
{{- $_ := set $limits .Values.gpu.resourceName (toString (int .Values.gpu.count)) -}}
{{- $_ := set $requests .Values.gpu.resourceName (toString (int .Values.gpu.count)) -}}
{{- $_ := set $res "limits" $limits -}}
{{- $_ := set $res "requests" $requests -}}
{{- end -}}
{{- toYaml $res -}}
{{- end -}}

{{/*
Affinity: .Values.affinity, with a required node affinity on
topology.kubernetes.io/region In [placement.region] when a region is set. The
region expression is ANDed into every existing nodeSelectorTerm (terms are ORed),
so a user-supplied node affinity can never widen placement outside the region.
*/}}
{{- define "inference-service.affinity" -}}
{{- $affinity := deepCopy (default (dict) .Values.affinity) -}}
{{- with .Values.placement.region -}}
{{- $expr := dict "key" "topology.kubernetes.io/region" "operator" "In" "values" (list .) -}}
{{- $node := default (dict) (get $affinity "nodeAffinity") -}}
{{- $required := default (dict) (get $node "requiredDuringSchedulingIgnoredDuringExecution") -}}
{{- $terms := list -}}
{{- range (default (list) (get $required "nodeSelectorTerms")) -}}
{{- $term := deepCopy . -}}
{{- $_ := set $term "matchExpressions" (append (default (list) (get $term "matchExpressions")) $expr) -}}
{{- $terms = append $terms $term -}}
{{- end -}}
{{- if not $terms -}}
{{- $terms = list (dict "matchExpressions" (list $expr)) -}}
{{- end -}}
{{- $_ := set $required "nodeSelectorTerms" $terms -}}
{{- $_ := set $node "requiredDuringSchedulingIgnoredDuringExecution" $required -}}
{{- $_ := set $affinity "nodeAffinity" $node -}}
{{- end -}}
{{- if $affinity -}}
{{- toYaml $affinity -}}
{{- end -}}
{{- end -}}

{{/*
Node selector: .Values.nodeSelector plus <gpu.typeLabel>: <gpu.type> when a GPU
type is requested.
*/}}
{{- define "inference-service.nodeSelector" -}}
{{- $sel := deepCopy (default (dict) .Values.nodeSelector) -}}
{{- if and (gt (int .Values.gpu.count) 0) .Values.gpu.type .Values.gpu.typeLabel -}}
{{- $_ := set $sel .Values.gpu.typeLabel .Values.gpu.type -}}
{{- end -}}
{{- if $sel -}}
{{- toYaml $sel -}}
{{- end -}}
{{- end -}}

{{/*
Tolerations: .Values.tolerations plus one for the GPU resource taint.
*/}}
{{- define "inference-service.tolerations" -}}
{{- $tol := default (list) .Values.tolerations -}}
{{- if gt (int .Values.gpu.count) 0 -}}
{{- $tol = append $tol (dict "key" .Values.gpu.resourceName "operator" "Exists" "effect" "NoSchedule") -}}
{{- end -}}
{{- if $tol -}}
{{- toYaml $tol -}}
{{- end -}}
{{- end -}}

{{/*
One HTTP probe. Usage: include "inference-service.probe" (dict "probe" .Values.probes.liveness "port" "http" "extraDelay" 0)
"port" is omitted for Knative, which probes through its queue-proxy.
*/}}
{{- define "inference-service.probe" -}}
httpGet:
  path: {{ .probe.path }}
  {{- with .port }}
  port: {{ . }}
  {{- end }}
initialDelaySeconds: {{ add (int .probe.initialDelaySeconds) (int (default 0 .extraDelay)) }}
periodSeconds: {{ .probe.periodSeconds }}
timeoutSeconds: {{ .probe.timeoutSeconds }}
failureThreshold: {{ .probe.failureThreshold }}
{{- end -}}

{{/*
The inference container, shared by the Deployment and the Knative Service.
Usage: include "inference-service.container" (dict "knative" false "context" $)
*/}}
{{- define "inference-service.container" -}}
{{- $ := .context -}}
{{- $v := $.Values -}}
- name: inference
  image: {{ include "inference-service.image" $ | quote }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  {{- with $v.command }}
  command:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.args }}
  args:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- $gw := $v.gateway.enabled }}
  {{- /* Behind the gateway the payload's port is "payload"; in Knative only the gateway has one. */}}
  {{- if not (and .knative $gw) }}
  ports:
    - name: {{ if $gw }}payload{{ else if .knative }}http1{{ else }}http{{ end }}
      containerPort: {{ $v.containerPort }}
      protocol: TCP
  {{- end }}
  env:
    - name: TIZI_API_KEYS_DIR
      value: {{ $v.apiKeys.mountPath | quote }}
    - name: TIZI_MODEL_CACHE_DIR
      value: {{ $v.modelCache.mountPath | quote }}
    {{- if not .knative }}
    - name: PORT
      value: {{ $v.containerPort | quote }}
    {{- end }}
  envFrom:
    - configMapRef:
        name: {{ include "inference-service.configName" $ }}
  {{- if .knative }}
  {{- if not $gw }}
  {{- include "inference-service.knativeProbes" $ | nindent 2 }}
  {{- end }}
  {{- else }}
  {{- $port := ternary "payload" "http" $gw }}
  startupProbe:
    {{- include "inference-service.probe" (dict "probe" $v.probes.startup "port" $port) | nindent 4 }}
  livenessProbe:
    {{- include "inference-service.probe" (dict "probe" $v.probes.liveness "port" $port) | nindent 4 }}
  readinessProbe:
    {{- include "inference-service.probe" (dict "probe" $v.probes.readiness "port" $port) | nindent 4 }}
  {{- if gt (int $v.shutdown.preStopSleepSeconds) 0 }}
  {{- /* Keep serving while Services drop the pod from their endpoints; SIGTERM (drain) comes after. */}}
  lifecycle:
    preStop:
      sleep:
        seconds: {{ $v.shutdown.preStopSleepSeconds }}
  {{- end }}
  {{- end }}
  resources:
    {{- include "inference-service.resources" $ | nindent 4 }}
  securityContext:
    {{- toYaml $v.containerSecurityContext | nindent 4 }}
  volumeMounts:
    - name: api-keys
      mountPath: {{ $v.apiKeys.mountPath }}
      readOnly: true
    - name: tmp
      mountPath: /tmp
    - name: model-cache
      mountPath: {{ $v.modelCache.mountPath }}
{{- end -}}

{{/*
Knative rejects startupProbe: the liveness probe waits out the startup budget instead.
Probes carry no port: the queue-proxy probes the serving container's single port.
*/}}
{{- define "inference-service.knativeProbes" -}}
{{- $v := .Values -}}
{{- $startup := $v.probes.startup -}}
{{- $budget := add (int $startup.initialDelaySeconds) (mul (int $startup.periodSeconds) (int $startup.failureThreshold)) -}}
livenessProbe:
  {{- include "inference-service.probe" (dict "probe" $v.probes.liveness "extraDelay" $budget) | nindent 2 }}
readinessProbe:
  {{- include "inference-service.probe" (dict "probe" $v.probes.readiness) | nindent 2 }}
{{- end -}}

{{/*
The gateway sidecar (tizi/gateway: Envoy run by tizi's supervisor). It holds the named port
the Service (or Knative) sends traffic to, reads gateway.json from its ConfigMap and the keys
from the same Secret as the payload (files, re-read when Kubernetes swaps them: rotation
without a restart), and forwards to the payload on 127.0.0.1. In Knative mode it is the
serving container, so the probes (through it, to the payload's open probe paths) are its.
*/}}
{{- define "inference-service.gatewayContainer" -}}
{{- $ := .context -}}
{{- $v := $.Values -}}
{{- $g := $v.gateway -}}
- name: gateway
  image: {{ printf "%s:%s" $g.image.repository (toString $g.image.tag) | quote }}
  imagePullPolicy: {{ $g.image.pullPolicy }}
  args:
    - run
    - --settings
    - /etc/tizi-gateway/gateway.json
    - --keys
    - {{ $v.apiKeys.mountPath | quote }}
    - --state-dir
    - /run/tizi-gateway/state
    - --drain-seconds
    - {{ $g.drainSeconds | quote }}
  ports:
    - name: {{ ternary "http1" "http" .knative }}
      containerPort: {{ $g.port }}
      protocol: TCP
    {{- if not .knative }}
    - name: metrics
      containerPort: {{ $g.metricsPort }}
      protocol: TCP
    {{- end }}
  {{- if .knative }}
  {{- include "inference-service.knativeProbes" $ | nindent 2 }}
  {{- else }}
  {{- /* Startup every 1 s: the kubelet probes readiness as soon as it passes, so the pod is
       Ready about 1 s after Envoy listens, not after a failed readiness probe's 2 s period. */}}
  startupProbe:
    httpGet:
      path: /ready
      port: metrics
    periodSeconds: 1
    failureThreshold: 120
  readinessProbe:
    httpGet:
      path: /ready
      port: metrics
    periodSeconds: 2
    failureThreshold: 2
  livenessProbe:
    httpGet:
      path: /ready
      port: metrics
    periodSeconds: 10
    failureThreshold: 3
  {{- if gt (int $v.shutdown.preStopSleepSeconds) 0 }}
  lifecycle:
    preStop:
      sleep:
        seconds: {{ $v.shutdown.preStopSleepSeconds }}
  {{- end }}
  {{- end }}
  resources:
    {{- toYaml $g.resources | nindent 4 }}
  securityContext:
    {{- toYaml $v.containerSecurityContext | nindent 4 }}
  volumeMounts:
    - name: api-keys
      mountPath: {{ $v.apiKeys.mountPath }}
      readOnly: true
    - name: gateway-settings
      mountPath: /etc/tizi-gateway
      readOnly: true
    - name: gateway-run
      mountPath: /run/tizi-gateway
    - name: tmp
      mountPath: /tmp
{{- end -}}

{{/*
The gateway's settings file: what tizi's edge publisher writes on a site, from values here.
*/}}
{{- define "inference-service.gatewaySettings" -}}
{{- $v := .Values -}}
{{- $g := $v.gateway -}}
{{- $paths := list $v.probes.startup.path $v.probes.liveness.path $v.probes.readiness.path | uniq | sortAlpha -}}
{{- dict
  "upstream_host" "127.0.0.1"
  "upstream_port" (int $v.containerPort)
  "listen_port" (int $g.port)
  "metrics_port" (int $g.metricsPort)
  "requests_per_minute" (int $g.requestsPerMinute)
  "burst" (int $g.burst)
  "tls" "off"
  "open_paths" $paths
  "request_timeout_s" (int $g.requestTimeoutSeconds)
  | toPrettyJson -}}
{{- end -}}

{{/*
Pod volumes, shared by the Deployment and the Knative Service.
*/}}
{{- /*
The model as an artifact: an init container from the model image copies /model into the
model cache emptyDir (restricted like the server; it needs only cp). The server verifies
the weights' sha256 before it starts, so one server image serves several models.
*/}}
{{- define "inference-service.modelLoader" -}}
{{- $v := .Values -}}
{{- if $v.model.image }}
- name: model-loader
  image: {{ $v.model.image | quote }}
  imagePullPolicy: {{ $v.model.imagePullPolicy }}
  command: ["cp", "-R", "/model/.", {{ $v.modelCache.mountPath | quote }}]
  securityContext:
    {{- toYaml $v.containerSecurityContext | nindent 4 }}
  resources:
    requests:
      cpu: 100m
      memory: 64Mi
    limits:
      cpu: 500m
      memory: 128Mi
  volumeMounts:
    - name: model-cache
      mountPath: {{ $v.modelCache.mountPath }}
{{- end }}
{{- end }}

{{- define "inference-service.volumes" -}}
- name: api-keys
  secret:
    secretName: {{ include "inference-service.apiKeysSecret" . }}
    defaultMode: 256 # 0400: owner read-only (group read is added for fsGroup)
- name: tmp
  emptyDir: {}
- name: model-cache
  emptyDir:
    sizeLimit: {{ .Values.modelCache.sizeLimit }}
{{- if .Values.gateway.enabled }}
- name: gateway-settings
  configMap:
    name: {{ include "inference-service.fullname" . }}-gateway
- name: gateway-run
  emptyDir:
    medium: Memory
    sizeLimit: 16Mi
{{- end }}
{{- end -}}

{{/*
Chart-wide checks that need more than the JSON schema.
*/}}
{{- define "inference-service.validate" -}}
{{- $_ := include "inference-service.apiKeysSecret" . -}}
{{- if and .Values.gateway.enabled (or (eq (int .Values.gateway.port) (int .Values.containerPort)) (eq (int .Values.gateway.metricsPort) (int .Values.containerPort)) (eq (int .Values.gateway.port) (int .Values.gateway.metricsPort))) -}}
{{- fail (printf "gateway.port (%d), gateway.metricsPort (%d) and containerPort (%d) must all differ: the gateway and the payload share the pod's network" (int .Values.gateway.port) (int .Values.gateway.metricsPort) (int .Values.containerPort)) -}}
{{- end -}}
{{- if .Values.knative.enabled -}}
{{- range $name, $port := dict "containerPort" .Values.containerPort "gateway.port" .Values.gateway.port "gateway.metricsPort" .Values.gateway.metricsPort -}}
{{- if has (int $port) (list 8008 8012 8013 8022 9090 9091) -}}
{{- fail (printf "%s (%d) is reserved by Knative's queue-proxy in every revision pod (8008, 8012, 8013, 8022, 9090, 9091); choose another port" $name (int $port)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) -}}
{{- fail (printf "autoscaling.minReplicas (%d) must not exceed autoscaling.maxReplicas (%d)" (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) -}}
{{- end -}}
{{- if and .Values.knative.enabled (gt (int .Values.knative.maxScale) 0) (gt (int .Values.knative.minScale) (int .Values.knative.maxScale)) -}}
{{- fail (printf "knative.minScale (%d) must not exceed knative.maxScale (%d)" (int .Values.knative.minScale) (int .Values.knative.maxScale)) -}}
{{- end -}}
{{- if and .Values.knative.enabled .Values.ingress.enabled -}}
{{- fail "ingress.enabled cannot be combined with knative.enabled: Knative routes traffic through its own networking layer (use a Knative DomainMapping for a custom host)" -}}
{{- end -}}
{{- if and .Values.knative.enabled .Values.model.image (not .Values.knative.initContainers) -}}
{{- fail "model.image with knative.enabled needs knative.initContainers: true: the weights arrive by an init container, which Knative refuses unless its config-features flag kubernetes.podspec-init-containers is enabled (enable it, then set the value)" -}}
{{- end -}}
{{- if and .Values.ingress.enabled (not .Values.ingress.hosts) -}}
{{- fail "ingress.enabled needs at least one entry in ingress.hosts" -}}
{{- end -}}
{{- if and .Values.pdb.enabled (not .Values.knative.enabled) (eq (toString .Values.pdb.minAvailable) "") (eq (toString .Values.pdb.maxUnavailable) "") -}}
{{- fail "pdb.enabled needs pdb.minAvailable or pdb.maxUnavailable" -}}
{{- end -}}
{{- end -}}

package main

import (
	"bytes"
	"os"
	"path"
	"strings"
	"testing"

	"gopkg.in/yaml.v2"

	"github.com/canaryd/canaryd/config"
)

// k8sObject is the part of a manifest the checks read.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Replicas int `yaml:"replicas"`
		Strategy struct {
			Type string `yaml:"type"`
		} `yaml:"strategy"`
		Template struct {
			Spec struct {
				ServiceAccountName string `yaml:"serviceAccountName"`
				Containers         []struct {
					Args []string `yaml:"args"`
					Env  []struct {
						Name      string `yaml:"name"`
						ValueFrom struct {
							SecretKeyRef struct {
								Name string `yaml:"name"`
								Key  string `yaml:"key"`
							} `yaml:"secretKeyRef"`
						} `yaml:"valueFrom"`
					} `yaml:"env"`
					ReadinessProbe struct {
						HTTPGet struct {
							Path string `yaml:"path"`
						} `yaml:"httpGet"`
					} `yaml:"readinessProbe"`
					LivenessProbe struct {
						HTTPGet struct {
							Path string `yaml:"path"`
						} `yaml:"httpGet"`
					} `yaml:"livenessProbe"`
					VolumeMounts []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

// The manifests hold what running canaryd in a cluster needs, their embedded config is
// valid, and the Deployment's flags, mounts and probes agree with it.
func TestKubernetesManifests(t *testing.T) {
	b, err := os.ReadFile("../../deploy/kubernetes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs := map[string]k8sObject{}
	for i, doc := range bytes.Split(b, []byte("\n---\n")) {
		var o k8sObject
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		objs[o.Kind] = o
	}
	for _, kind := range []string{"ServiceAccount", "Role", "RoleBinding", "PersistentVolumeClaim", "ConfigMap", "Deployment", "Service"} {
		if _, ok := objs[kind]; !ok {
			t.Errorf("no %s", kind)
		}
	}
	cfg, err := config.Parse([]byte(objs["ConfigMap"].Data["canaryd.yml"]), kinds())
	if err != nil {
		t.Fatalf("the ConfigMap's canaryd.yml is invalid: %v", err)
	}
	dep := objs["Deployment"]
	if dep.Spec.Replicas != 1 || dep.Spec.Strategy.Type != "Recreate" {
		t.Errorf("deployment: %d replicas, strategy %q; the store has one writer", dep.Spec.Replicas, dep.Spec.Strategy.Type)
	}
	if dep.Spec.Template.Spec.ServiceAccountName != objs["ServiceAccount"].Metadata.Name {
		t.Errorf("deployment does not run as the ServiceAccount the RBAC binds")
	}
	c := dep.Spec.Template.Spec.Containers[0]
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	args := strings.Join(c.Args, " ")
	if !strings.HasPrefix(args, "serve --config "+mounts["config"]+"/canaryd.yml") {
		t.Errorf("args %q do not read the mounted config at %s", args, mounts["config"])
	}
	if path.Dir(cfg.Server.Storage) != mounts["data"] {
		t.Errorf("storage %s is not on the PVC mounted at %s", cfg.Server.Storage, mounts["data"])
	}
	if !strings.HasPrefix(cfg.Server.Listen, "0.0.0.0:") {
		t.Errorf("listen %s is not reachable from the Service", cfg.Server.Listen)
	}
	if c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("probes %q and %q", c.ReadinessProbe.HTTPGet.Path, c.LivenessProbe.HTTPGet.Path)
	}
}

// The replicas' manifest: three replicas rolling on one PostgreSQL, the URL and the
// password from a Secret (the password never on the command line), no volume for the
// state, the embedded config valid with that URL.
func TestKubernetesReplicasManifest(t *testing.T) {
	b, err := os.ReadFile("../../deploy/kubernetes-replicas.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs := map[string]k8sObject{}
	for i, doc := range bytes.Split(b, []byte("\n---\n")) {
		var o k8sObject
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		objs[o.Kind] = o
	}
	for _, kind := range []string{"ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Deployment", "PodDisruptionBudget", "Service"} {
		if _, ok := objs[kind]; !ok {
			t.Errorf("no %s", kind)
		}
	}
	if _, ok := objs["PersistentVolumeClaim"]; ok {
		t.Error("a PersistentVolumeClaim: the replicas' state is in the database")
	}
	dep := objs["Deployment"]
	if dep.Spec.Replicas != 3 || dep.Spec.Strategy.Type != "RollingUpdate" {
		t.Errorf("deployment: %d replicas, strategy %q; want 3, RollingUpdate", dep.Spec.Replicas, dep.Spec.Strategy.Type)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	args := strings.Join(c.Args, " ")
	if !strings.Contains(args, "--storage $(CANARYD_STORAGE)") {
		t.Errorf("args %q do not take the storage from $(CANARYD_STORAGE)", args)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
	}
	if env["CANARYD_STORAGE"] != "canaryd-postgres/url" || env["PGPASSWORD"] != "canaryd-postgres/password" {
		t.Errorf("env from secrets: %v", env)
	}
	if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].Name != "config" {
		t.Errorf("mounts %+v: only the config", c.VolumeMounts)
	}
	src := objs["ConfigMap"].Data["canaryd.yml"]
	src = strings.Replace(src, "server:\n", "server:\n  storage: \"postgres://canaryd@postgres.db.svc:5432/canaryd?sslmode=verify-full\"\n", 1)
	cfg, err := config.Parse([]byte(src), kinds())
	if err != nil {
		t.Fatalf("the ConfigMap's canaryd.yml with a PostgreSQL URL is invalid: %v", err)
	}
	if cfg.Server.ActuationStore != "" {
		t.Errorf("actuation_store %q: the replicas must share the safety layer in the database", cfg.Server.ActuationStore)
	}
	if !strings.HasPrefix(args, "serve --config /etc/canaryd/canaryd.yml") || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("args %q, readiness %q", args, c.ReadinessProbe.HTTPGet.Path)
	}
}

func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile("../../deploy/canaryd.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{
		"StateDirectory=canaryd",
		"--storage /var/lib/canaryd/canaryd.db",
		"ExecStartPre=/usr/local/bin/canaryd check-config /etc/canaryd/canaryd.yml",
		"ExecReload=/bin/kill -HUP $MAINPID",
		"TimeoutStopSec=15",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("canaryd.service lacks %q", want)
		}
	}
}

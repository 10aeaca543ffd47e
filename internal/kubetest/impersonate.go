package kubetest

import (
	"fmt"
	"os"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ServiceAccountUser returns the user name of a ServiceAccount,
// system:serviceaccount:<namespace>:<name>.
func ServiceAccountUser(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// ConfigAs returns a copy of the admin Config that impersonates user with
// the given groups. The apiserver adds system:authenticated. Requests are
// authorized as the impersonated user only, so RBAC tests see exactly that
// user's permissions.
func (cp *ControlPlane) ConfigAs(user string, groups ...string) *rest.Config {
	c := rest.CopyConfig(cp.Config)
	c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return c
}

// ConfigAsServiceAccount returns a copy of the admin Config that
// impersonates a ServiceAccount. The apiserver fills in its groups
// (system:serviceaccounts, system:serviceaccounts:<namespace>,
// system:authenticated). The ServiceAccount object need not exist.
func (cp *ControlPlane) ConfigAsServiceAccount(namespace, name string) *rest.Config {
	return cp.ConfigAs(ServiceAccountUser(namespace, name))
}

// ClientAs returns a clientset for ConfigAs(user, groups...).
func (cp *ControlPlane) ClientAs(user string, groups ...string) kubernetes.Interface {
	// NewForConfig fails only on an invalid config; ours is derived from
	// the working admin config.
	return kubernetes.NewForConfigOrDie(cp.ConfigAs(user, groups...))
}

// ClientAsServiceAccount returns a clientset for
// ConfigAsServiceAccount(namespace, name).
func (cp *ControlPlane) ClientAsServiceAccount(namespace, name string) kubernetes.Interface {
	return kubernetes.NewForConfigOrDie(cp.ConfigAsServiceAccount(namespace, name))
}

// WriteKubeconfig writes a kubeconfig file for cfg (server, CA, bearer token
// or client certificate, and impersonation), for handing an identity to a
// separate process such as kube-proxy or a strait agent.
func WriteKubeconfig(path string, cfg *rest.Config) error {
	ca := cfg.CAData
	if len(ca) == 0 && cfg.CAFile != "" {
		var err error
		if ca, err = os.ReadFile(cfg.CAFile); err != nil {
			return fmt.Errorf("kubetest: %w", err)
		}
	}
	auth := &clientcmdapi.AuthInfo{
		Token:                 cfg.BearerToken,
		TokenFile:             cfg.BearerTokenFile,
		ClientCertificateData: cfg.CertData,
		ClientCertificate:     cfg.CertFile,
		ClientKeyData:         cfg.KeyData,
		ClientKey:             cfg.KeyFile,
		Impersonate:           cfg.Impersonate.UserName,
		ImpersonateUID:        cfg.Impersonate.UID,
		ImpersonateGroups:     cfg.Impersonate.Groups,
		ImpersonateUserExtra:  cfg.Impersonate.Extra,
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: ca}
	kc.AuthInfos["kubetest"] = auth
	kc.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: "kubetest"}
	kc.CurrentContext = "kubetest"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("kubetest: write kubeconfig: %w", err)
	}
	return nil
}

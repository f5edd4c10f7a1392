"""Which fields of Rancher objects hold a secret value, and which only name one: Rancher's field semantics.

Three kinds of field look alike by name and must be told apart by what Rancher's type definitions say:

- **A secret value**: the field is tagged `norman:"type=password"` or `norman:"writeOnly"` in Rancher's types
  (rancher/rancher `pkg/apis/management.cattle.io/v3/*_types.go`, `pkg/apis/project.cattle.io/v3/types.go`,
  rancher/rke `types/rke_types.go` and `types/backup_types.go`), or it is one of a node driver's
  `PrivateCredentialFields`/`PasswordFields` (rancher/rancher `pkg/data/management/machinedriver_data.go`), or it
  is the payload of a secret-holding object (a Kubernetes Secret's `data`, a token's `token`, ...).
- **A reference to a secret**: a string field that holds the *name* of a Secret object, e.g.
  `ClusterSecrets.S3CredentialSecret`, `ClusterStatus.ServiceAccountTokenSecret` (the secret migrator,
  rancher/rancher `pkg/controllers/management/secretmigrator`, moved the values into Secrets and kept their names
  here), `CatalogSecrets.CredentialSecret`, `...SecretName`. Its value is a name like
  `cattle-global-data:cluster-s3backup-x7k2p`; hiding it hides nothing and loses information.
- **A link**: the values of an API object's `links`, `actions` (`actionLinks` with `X-API-Action-Links: 1`) and
  `createTypes` maps, and a collection's `sort.links`, are URLs the server made (rancher/norman
  `types/server_types.go` `RawResource`/`Collection`, rancher/apiserver `pkg/types/server_types.go`), keyed by an
  action or field name: `actions.setpassword`, `sort.links.password`, `createTypes.secret`.

`ETCDService.Key` (an external etcd's client key) is not listed: `key` names too many public things (taints,
tolerations, selectors); the key is PEM, which the redactor hides wherever it appears.

Only string values can be secrets: a boolean (`mustChangePassword`), a number or null under any name is kept.
Fields of schemas Rancher defines at run time (node drivers, cloud credentials, auth providers added later) cannot
all be listed, so a name that ends like a secret (`...password`, `...secret`, `...secretKey`, `...apiKey`, ...) is
treated as one unless Rancher's types say it names a secret or it sits in a link map: hiding a harmless value there
is the safe error. Pure data and functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

Pattern = tuple[str, ...]

# --- objects whose whole payload is secret -----------------------------------------------------------------------
# Type names are compared lower case with any API group stripped (`management.cattle.io.token` → `token`).
SECRET_TYPES: Final = frozenset(
    {
        "secret",
        "namespacedsecret",
        "managementsecret",
        "basicauth",
        "namespacedbasicauth",
        "sshauth",
        "namespacedsshauth",
        "certificate",
        "namespacedcertificate",
        "dockercredential",
        "namespaceddockercredential",
    }
)
CERT_TYPES: Final = frozenset({"certificate", "namespacedcertificate"})
# `token` objects (Norman `token`, Steve `management.cattle.io.token`, `ext.cattle.io.token`) and the project API's
# service account tokens (`ServiceAccountToken.Token`, `norman:"writeOnly"`).
TOKEN_TYPES: Final = frozenset({"token", "serviceaccounttoken", "namespacedserviceaccounttoken"})
# A registration token's value is also embedded in the commands and URLs of the same object.
REGISTRATION_TYPES: Final = frozenset({"clusterregistrationtoken"})

LAST_APPLIED: Final = "kubectl.kubernetes.io/last-applied-configuration"
SECRET_PATHS: Final[tuple[Pattern, ...]] = (
    ("data", "*"),
    ("stringData", "*"),
    ("password",),
    ("privateKey",),
    ("registries", "*", "password"),
    ("registries", "*", "auth"),
    ("metadata", "annotations", LAST_APPLIED),
    ("annotations", LAST_APPLIED),
)
CERT_PATHS: Final[tuple[Pattern, ...]] = (("key",),)
TOKEN_PATHS: Final[tuple[Pattern, ...]] = (("token",), ("status", "token"), ("status", "value"))
# Where a registration token's own value is, to find it again inside commands and URLs.
REGISTRATION_VALUE_PATHS: Final[tuple[Pattern, ...]] = (("token",), ("status", "token"))


def type_names(obj: Mapping[str, Any]) -> frozenset[str]:
    """The normalised type names of an API object: its `type`, its `baseType`, and `secret` for a v1 Secret."""
    names = {_norm(obj.get("type")), _norm(obj.get("baseType"))}
    if obj.get("kind") == "Secret" and str(obj.get("apiVersion", "v1")) == "v1":
        names.add("secret")
    names.discard("")
    return frozenset(names)


def is_secret_object(names: Iterable[str]) -> bool:
    """Is an object of these type names (from `type_names`) a secret-holding object (its data is secret)?"""
    return any(n in SECRET_TYPES or n.endswith("secret") for n in names)


def secret_paths(names: frozenset[str], *, secrets: bool = True, tokens: bool = True) -> list[Pattern]:
    """Paths (relative to the object, `*` for any key or index) whose string values are secret in such an object."""
    out: list[Pattern] = []
    if secrets and is_secret_object(names):
        out.extend(SECRET_PATHS)
        if names & CERT_TYPES:
            out.extend(CERT_PATHS)
    if tokens and names & (TOKEN_TYPES | REGISTRATION_TYPES):
        out.extend(TOKEN_PATHS)
    return out


def is_registration_token(names: frozenset[str]) -> bool:
    return bool(names & REGISTRATION_TYPES)


# --- fields that hold a secret value, wherever they are -----------------------------------------------------------
# Every name Rancher tags `type=password` or `writeOnly` (and that it uses for nothing but secrets), and the
# deprecated ClusterStatus.ServiceAccountToken (a cluster-admin token before the secret migration).
SECRET_FIELDS: Final = frozenset(
    {
        "password",  # LDAP/AD test input, PrivateRegistry, catalogs, logging, SMTP, basic auth, users (bcrypt hash)
        "clientSecret",  # GitHub, Google OAuth, generic OIDC/Keycloak auth configs; pipeline source providers
        "applicationSecret",  # Azure AD
        "privateKey",  # Shibboleth/SAML, OIDC, pipelines, SSH auth
        "spKey",  # SAML service-provider key
        "oauthCredential",  # Google OAuth
        "serviceAccountCredential",  # Google OAuth
        "serviceAccountPassword",  # Active Directory, OpenLDAP/FreeIPA
        "serviceAccountToken",  # ClusterStatus (before the secret migration), when it is a string
        "sshKey",  # RKE nodes and bastion host
        "secretKey",  # S3 backup config, S3 cloud credentials, global DNS providers
        "apiKey",  # Cloudflare global DNS provider
        "authPassword",  # Elasticsearch logging
        "saslPassword",  # Kafka logging
        "sharedKey",  # Fluentd logging
        "secret",  # WeChat and DingTalk notifiers
        "aadClientCertPassword",  # RKE Azure cloud provider
        "awsSecretAccessKey",  # RKE ECR credential plugin
        "gitCloneToken",  # pipelines
        "accessToken",  # pipelines, source code credentials, DigitalOcean driver
        "refreshToken",  # source code credentials
    }
)

# Names that hold a secret only under a given parent field (elsewhere they mean something else).
SECRET_FIELDS_IN: Final[Mapping[str, frozenset[str]]] = {
    "importedConfig": frozenset({"kubeConfig"}),  # ImportedConfig.KubeConfig, type=password
    "azureCloudProvider": frozenset({"aadClientSecret"}),  # RKE AzureCloudProvider.AADClientSecret, type=password
    "aciNetworkProvider": frozenset({"token", "apicUserKey", "kafkaClientKey"}),  # migrated to aci*Secret
    "ecrCredentialPlugin": frozenset({"awsAccessToken"}),  # AwsSessionToken; migrated to privateRegistryECRSecret
    "splunkConfig": frozenset({"token"}),  # logging SplunkConfig.Token, type=password
    "syslogConfig": frozenset({"token"}),  # logging SyslogConfig.Token, type=password
}
# Node drivers' `PrivateCredentialFields` and `PasswordFields`, inside a `<driver>credentialConfig` of a cloud
# credential or a `<driver>Config` of a node template (a parent whose name ends in "config").
DRIVER_PRIVATE_FIELDS: Final = frozenset(
    {
        "token",  # Linode, OTC
        "password",
        "secretKey",
        "clientSecret",
        "apiKey",
        "accessToken",  # DigitalOcean
        "apiSecretKey",  # Exoscale
        "kubeconfigContent",  # Harvester
        "rootPass",  # Linode
        "privateKeyContents",  # OCI
        "privateKeyPassphrase",  # OCI
        "authEncodedJson",  # Google
    }
)
DRIVER_CONFIG_SUFFIX: Final = "config"

# --- fields that name a secret (never its value) ------------------------------------------------------------------
SECRET_REFERENCE_FIELDS: Final = frozenset(
    {
        # ClusterSpec.ClusterSecrets, and the same names deprecated on ClusterStatus (flat on a Norman cluster)
        "privateRegistrySecret",
        "s3CredentialSecret",
        "weavePasswordSecret",
        "vsphereSecret",
        "virtualCenterSecret",
        "openStackSecret",
        "aadClientSecret",  # a value only inside azureCloudProvider (SECRET_FIELDS_IN)
        "aadClientCertSecret",
        "aciAPICUserKeySecret",
        "aciTokenSecret",
        "aciKafkaClientKeySecret",
        "secretsEncryptionProvidersSecret",
        "bastionHostSSHKeySecret",
        "kubeletExtraEnvSecret",
        "privateRegistryECRSecret",
        "serviceAccountTokenSecret",  # ClusterStatus
        "smtpCredentialSecret",  # NotifierStatus
        "wechatCredentialSecret",
        "dingtalkCredentialSecret",
        "credentialSecret",  # CatalogSecrets / CatalogStatus
        # ...SecretName fields (provisioning, catalog, RKE2 and cluster registration tokens, Kubernetes volumes)
        "secretName",
        "secretNamespace",
        "tokenSecretName",
        "cloudCredentialSecretName",
        "authConfigSecretName",
        "tlsSecretName",
        "dataSecretName",
        "kubeConfigSecretName",
        "basicAuthSecretName",
        "clientSecretName",
    }
)

# --- links ---------------------------------------------------------------------------------------------------------
LINK_MAPS: Final = frozenset({"links", "actions", "actionLinks", "createTypes"})
SORT: Final = "sort"  # a collection's `sort` has its own `links` map (Norman `Sort.Links`)

# Names of fields of run-time schemas that are treated as secret for safety (see the module docstring).
SECRET_NAME: Final = re.compile(
    r"(?:password|passwd|secret|secretkey|privatekey|spkey|apikey|accesstoken|refreshtoken)\Z", re.IGNORECASE
)

# Every name above, and every name SECRET_NAME matches, ends (ignoring case) in one of these: a quick scan of the
# text for them finds every candidate. A map under a name ending in DRIVER_CONFIG_SUFFIX may hold driver fields.
KEY_ENDINGS: Final = ("password", "passwd", "secret", "key", "token", "credential")
# Likewise for the type names that have their own rules (SECRET_TYPES, TOKEN_TYPES, REGISTRATION_TYPES, and driver
# config objects such as Steve's `rke-machine-config.cattle.io.linodeconfig`, see `fields_parent`).
TYPE_ENDINGS: Final = ("secret", "auth", "certificate", "credential", "token", DRIVER_CONFIG_SUFFIX)

_MAYBE_SECRET: Final = SECRET_FIELDS | frozenset().union(*SECRET_FIELDS_IN.values())
_IN_PARENT: Final = dict(SECRET_FIELDS_IN)


def field_holds_secret(key: str, parent: str | None = None) -> bool:
    """Does a non-empty string value under `key` hold a secret value, `parent` being the key of the enclosing map?

    `parent` is None at the top of an object (or when unknown). A link map's values are decided by
    `is_link_map` before this is asked. Returns False for a field that names a secret (`s3CredentialSecret`).
    """
    if parent is not None:
        inside = _IN_PARENT.get(parent)
        if inside is not None and key in inside:
            return True
        if key in DRIVER_PRIVATE_FIELDS and parent[-6:].lower() == DRIVER_CONFIG_SUFFIX:
            return True
    if key in SECRET_REFERENCE_FIELDS:
        return False
    return key in SECRET_FIELDS or SECRET_NAME.search(key) is not None


def fields_parent(obj: Mapping[str, Any], parent: str | None) -> str | None:
    """The parent name to judge `obj`'s own fields by (`parent`: the field `obj` sits under, or None).

    An object whose type is a driver config (Steve's `rke-machine-config.cattle.io.linodeconfig`) holds the
    driver's fields directly, as a `linodeConfig` map would: unless it already sits under a `...Config` field
    (Norman's nested `{"type": "/v3/schemas/importedConfig"}` under `importedConfig`), its type stands in.
    """
    kind = obj.get("type")
    driver_type = isinstance(kind, str) and kind[-6:].lower() == DRIVER_CONFIG_SUFFIX
    if driver_type and (parent is None or parent[-6:].lower() != DRIVER_CONFIG_SUFFIX):
        return str(kind)
    return parent


def may_hold_secret(key: str) -> bool:
    """Could `key` hold a secret value under some parent? (For quick scans that do not know the parent.)

    Driver fields are left out: they are secret only inside a `...Config` map, which a scan looks for instead.
    """
    if key in _MAYBE_SECRET:
        return True
    return key not in SECRET_REFERENCE_FIELDS and SECRET_NAME.search(key) is not None


def is_link_map(key: str, container: Mapping[str, Any], container_key: str | None) -> bool:
    """Is the map under `key`, inside `container` (itself under `container_key`), a map of server-made URLs?

    True for `links`/`actions`/`actionLinks`/`createTypes` of an API object or collection (a map with a string
    `type`) and for `links` inside a collection's `sort`.
    """
    if key not in LINK_MAPS:
        return False
    if isinstance(container.get("type"), str):
        return True
    return key == "links" and container_key == SORT


def _norm(value: Any) -> str:
    return value.rsplit(".", 1)[-1].lower() if isinstance(value, str) else ""


__all__ = [
    "CERT_PATHS",
    "CERT_TYPES",
    "DRIVER_CONFIG_SUFFIX",
    "DRIVER_PRIVATE_FIELDS",
    "KEY_ENDINGS",
    "LAST_APPLIED",
    "LINK_MAPS",
    "REGISTRATION_TYPES",
    "REGISTRATION_VALUE_PATHS",
    "SECRET_FIELDS",
    "SECRET_FIELDS_IN",
    "SECRET_NAME",
    "SECRET_PATHS",
    "SECRET_REFERENCE_FIELDS",
    "SECRET_TYPES",
    "TOKEN_PATHS",
    "TOKEN_TYPES",
    "TYPE_ENDINGS",
    "field_holds_secret",
    "fields_parent",
    "is_link_map",
    "is_registration_token",
    "is_secret_object",
    "may_hold_secret",
    "secret_paths",
    "type_names",
]

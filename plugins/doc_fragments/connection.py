# Copyright (c) helmops.recovery contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Kubernetes connection options, named and defaulted as in kubernetes.core so
    # module_defaults and AWX's "OpenShift or Kubernetes API Bearer Token"
    # credential (K8S_AUTH_* variables) work unchanged. Kept in step with
    # plugins/module_utils/_module.py CONNECTION_ARGUMENT_SPEC by a unit test.
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file, or the kubeconfig itself as a dictionary.
      - Without it (and without O(host)), C(~/.kube/config) is used, then the in-cluster service account.
      - Can also be set with E(K8S_AUTH_KUBECONFIG).
    type: raw
  context:
    description:
      - The kubeconfig context to use.
      - Can also be set with E(K8S_AUTH_CONTEXT).
    type: str
  host:
    description:
      - The Kubernetes API server URL. Overrides the kubeconfig's server.
      - Can also be set with E(K8S_AUTH_HOST).
    type: str
  api_key:
    description:
      - A bearer token for the API server. Overrides the kubeconfig's credentials.
      - Can also be set with E(K8S_AUTH_API_KEY).
    type: str
  validate_certs:
    description:
      - Whether to verify the API server's TLS certificate.
      - Can also be set with E(K8S_AUTH_VERIFY_SSL).
    type: bool
    aliases: [verify_ssl]
  ca_cert:
    description:
      - Path to a CA certificate file to verify the API server with.
      - Can also be set with E(K8S_AUTH_SSL_CA_CERT).
    type: path
    aliases: [ssl_ca_cert]
  client_cert:
    description:
      - Path to a client certificate file.
      - Can also be set with E(K8S_AUTH_CERT_FILE).
    type: path
    aliases: [cert_file]
  client_key:
    description:
      - Path to the client certificate's key file.
      - Can also be set with E(K8S_AUTH_KEY_FILE).
    type: path
    aliases: [key_file]
  proxy:
    description:
      - An HTTP proxy URL to reach the API server through. E(HTTP_PROXY) is not honoured.
      - Can also be set with E(K8S_AUTH_PROXY).
    type: str
  impersonate_user:
    description:
      - A user name to impersonate.
      - Can also be set with E(K8S_AUTH_IMPERSONATE_USER).
    type: str
  impersonate_groups:
    description:
      - Groups to impersonate.
      - Can also be set with E(K8S_AUTH_IMPERSONATE_GROUPS), comma-separated.
    type: list
    elements: str
  driver:
    description:
      - Helm's storage driver for release records.
      - Defaults to E(HELM_DRIVER) when set (as Helm does), else V(secret).
    type: str
    choices: [secret, configmap]
  request_timeout:
    description:
      - The longest, in seconds, one Kubernetes API request may take, from connecting to its last byte. A server
        that stalls or trickles its answer fails the request after this long (a per-read timeout would never fire).
      - Transient failures are retried within about 30 seconds; a request past this deadline is not retried.
    type: int
    default: 60
requirements:
  - kubernetes >= 37.0.0 (the official Python client)
  - PyYAML
notes:
  - Reading release records needs C(get) and C(list) on Secrets (or ConfigMaps) in the release namespaces.
    C(list) on Secrets exposes every Secret in the namespace; see the collection's RBAC documentation.
"""

    ATTRIBUTES = r"""
attributes:
  platform:
    description: Runs where the Kubernetes API is reachable, usually the controller (delegated to localhost).
    platforms: posix
  action_group:
    description: Use C(group/helmops.recovery.helm) in C(module_defaults) to set the connection options once.
    support: full
    membership:
      - helmops.recovery.helm
"""

    FACTS = r"""
attributes:
  check_mode:
    description: Can run in check_mode and return the same facts; it never changes anything.
    support: full
  diff_mode:
    description: Changes nothing, so there is no diff.
    support: N/A
  facts:
    description: Returns only C(ansible_facts); each inventory host is a cluster, so these are that host's facts.
    support: full
"""

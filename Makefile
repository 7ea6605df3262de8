# nazbench: `make smoke` runs the benchmark in the lab, `make test` runs every check.
# Both install what they need first (scripts/bootstrap.sh).
SHELL := /bin/bash
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PY_COLORS := 0
export ANSIBLE_NOCOLOR := 1

.PHONY: test bootstrap lint unit image molecule e2e smoke teardown

# The unit tests, molecule and the lab end to end run side by side (scripts/together):
# most of their time is spent waiting on containers, systemd and the lab's 154 ms link.
# Each pytest gets its own temporary root: pytest keeps only its last three base
# directories, so two sessions sharing one would remove each other's.
UNIT := mkdir -p /tmp/nazbench-pytest-unit && PYTEST_DEBUG_TEMPROOT=/tmp/nazbench-pytest-unit pytest tests/unit
MOLECULE := molecule test --all
E2E := mkdir -p /tmp/nazbench-pytest-e2e && PYTEST_DEBUG_TEMPROOT=/tmp/nazbench-pytest-e2e pytest -v tests/e2e

test: bootstrap lint image
	@scripts/together unit '$(UNIT)' molecule '$(MOLECULE)' e2e '$(E2E)'
	@echo "make test: all checks passed"

bootstrap:
	@scripts/bootstrap.sh

lint: bootstrap
	yamllint --strict .
	ansible-lint --offline
	ruff check .
	ruff format --check .

unit: bootstrap
	$(UNIT)

# The lab's base image (built once with debootstrap, then cached by recipe).
image: bootstrap
	ansible-playbook playbooks/provision.yml --tags lab_install,lab_image

molecule: image
	$(MOLECULE)

e2e: image
	$(E2E)

# The main job: the benchmark in the lab, end to end, at smoke size (about 10 minutes):
# build the lab, deploy Redis, the mock SMSC, naz-cli and the observability stack, check
# the WAN, then experiment A with the smoke profile: the SMSC and Redis stopped on a
# seeded schedule while naz drains the queue, every message reconciled; then collect the
# run's errors and metrics and write its report (artifacts/<run_id>/report.html).
smoke: bootstrap
	ansible-playbook playbooks/provision.yml
	ansible-playbook playbooks/deploy.yml
	ansible-playbook playbooks/measure_rtt.yml -e rtt_expect_ms=154
	ansible-playbook playbooks/run_chaos.yml -e run_setup=false -e profile=smoke
	ansible-playbook playbooks/collect.yml

teardown: bootstrap
	ansible-playbook playbooks/teardown.yml

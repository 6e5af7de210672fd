// What `coder templates init` writes: a working local template to start from.
export const EXAMPLE_TEMPLATE: Record<string, string> = {
  "template.yaml": `# A local template: each workspace is a directory on the provisioner daemon's host, with one
# agent process running in it. Push it with: coder templates push <name> -d <this directory>
parameters:
  - name: greeting
    display_name: Greeting
    description: Printed by the startup script.
    type: string
    default: hello
    mutable: true
    validation:
      regex: "^[a-z ]{1,32}$"
      error: lowercase words only
  - name: cpus
    display_name: CPU budget
    type: number
    default: 2
    validation:
      min: 1
      max: 8

# none: plain processes; bwrap: each agent in a bubblewrap sandbox (needs bwrap installed).
isolation: none

agents:
  - name: main
    env:
      GREETING: "{{param.greeting}}"
    startup_script: |
      echo "$GREETING from {{workspace.name}} ({{param.cpus}} CPUs)"
    shutdown_script: |
      echo "bye"
    metadata:
      - key: load
        display_name: Load average
        script: cut -d' ' -f1 /proc/loadavg
        interval: 10
        timeout: 1
    apps:
      - slug: web
        display_name: Web server
        url: http://127.0.0.1:8080
        share: owner
        healthcheck:
          url: http://127.0.0.1:8080/
          interval: 5
          threshold: 3
`,
  "README.md": `# Local workspace

Each workspace is a directory on the provisioner daemon's host; its agent runs there as a process.
Parameters: \`greeting\` (mutable) and \`cpus\`.
`,
};

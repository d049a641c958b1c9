using System.Text.Json.Nodes;

namespace IpvlanCni.Bench;

/// <summary>One run of a plugin: exit code, its stdout, wall time from spawn to exit.</summary>
public sealed record PluginRun(int ExitCode, string StdOut, TimeSpan Elapsed, int ProcessId)
{
    public PluginRun Succeeded(string what) => ExitCode == 0
        ? this
        : throw new InvalidOperationException($"{what} failed (exit {ExitCode}): {StdOut}");
}

/// <summary>
/// A CNI plugin called the way a container runtime calls it: its own clean environment, the network configuration
/// on stdin. Ours and the reference get identical configurations but for the type and the IPAM data folder.
/// </summary>
public sealed class PluginUnderTest
{
    readonly string _cniPath;
    readonly string _workDir;

    /// <param name="ipam">the IPAM object; default host-local on the bench's range, its data in a folder per plugin type.</param>
    public PluginUnderTest(string label, string path, string type, string cniPath, string workDir, JsonObject? ipam = null)
    {
        (Label, Path, _cniPath, _workDir) = (label, path, cniPath, workDir);
        ConfigPath = $"{workDir}/{label}.conf";
        File.WriteAllText(ConfigPath, new JsonObject
        {
            ["cniVersion"] = "1.0.0",
            ["name"] = "bench",
            ["type"] = type,
            ["master"] = Bench.MasterName,
            ["mode"] = "l2",
            ["stateDir"] = $"{workDir}/{type}-state", // ours; the reference ignores unknown keys
            ["ipam"] = ipam ?? new JsonObject
            {
                ["type"] = "host-local",
                ["ranges"] = new JsonArray(new JsonArray(new JsonObject
                {
                    ["subnet"] = "10.10.0.0/16",
                    ["rangeStart"] = "10.10.1.1",
                    ["rangeEnd"] = "10.10.1.250",
                    ["gateway"] = "10.10.0.1",
                })),
                ["dataDir"] = $"{workDir}/{type}-ipam",
                ["routes"] = new JsonArray(new JsonObject { ["dst"] = "0.0.0.0/0" }),
            },
        }.ToJsonString());
        // What a runtime (libcni) sends with VERSION.
        VersionQueryPath = $"{workDir}/version-query.conf";
        File.WriteAllText(VersionQueryPath, """{"cniVersion":"1.0.0"}""");
        Directory.CreateDirectory($"{workDir}/out");
    }

    public string Label { get; }
    public string Path { get; }
    public string ConfigPath { get; }
    string VersionQueryPath { get; }

    public Dictionary<string, string> Environment(string command, string containerId, string netns) => new()
    {
        ["CNI_COMMAND"] = command,
        ["CNI_CONTAINERID"] = containerId,
        ["CNI_NETNS"] = netns,
        ["CNI_IFNAME"] = "eth0",
        ["CNI_PATH"] = _cniPath,
        ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin",
    };

    public PluginRun Add(string containerId, string netns) => Run("ADD", containerId, netns);
    public PluginRun Del(string containerId, string netns) => Run("DEL", containerId, netns);
    public PluginRun Version() => Run("VERSION", "", "");

    public PluginRun Run(string command, string containerId, string netns, int slot = 0)
    {
        var child = Start(command, containerId, netns, slot);
        return Finish(Spawner.Wait(child), slot);
    }

    /// <summary>Starts one command; its stdout goes to this plugin's output file number <paramref name="slot"/>.</summary>
    public Spawner.Child Start(string command, string containerId, string netns, int slot) =>
        Spawner.Start(Path, [], Environment(command, containerId, netns), command == "VERSION" ? VersionQueryPath : ConfigPath, OutputPath(slot));

    public PluginRun Finish(Exited exited, int slot) =>
        new(exited.ExitCode, File.ReadAllText(OutputPath(slot)), exited.Elapsed, exited.ProcessId);

    string OutputPath(int slot) => $"{_workDir}/out/{Label}-{slot}.json";
}

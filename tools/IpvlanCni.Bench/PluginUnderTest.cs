using System.Diagnostics;
using System.Text.Json.Nodes;

namespace IpvlanCni.Bench;

/// <summary>One run of a plugin: exit code, output and how long it took from start to exit.</summary>
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
public sealed class PluginUnderTest(string label, string path, string type, string cniPath, string workDir)
{
    public string Label { get; } = label;
    public string Path { get; } = path;
    public string DataDir { get; } = $"{workDir}/{type}-ipam";

    public string Config { get; } = new JsonObject
    {
        ["cniVersion"] = "1.0.0",
        ["name"] = "bench",
        ["type"] = type,
        ["master"] = Bench.MasterName,
        ["mode"] = "l2",
        ["stateDir"] = $"{workDir}/{type}-state", // ours; the reference ignores unknown keys
        ["ipam"] = new JsonObject
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
    }.ToJsonString();

    public Dictionary<string, string> Environment(string command, string containerId, string netns) => new()
    {
        ["CNI_COMMAND"] = command,
        ["CNI_CONTAINERID"] = containerId,
        ["CNI_NETNS"] = netns,
        ["CNI_IFNAME"] = "eth0",
        ["CNI_PATH"] = cniPath,
        ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin",
    };

    public PluginRun Add(string containerId, string netns) => Run("ADD", containerId, netns);
    public PluginRun Del(string containerId, string netns) => Run("DEL", containerId, netns);
    public PluginRun Version() => Run("VERSION", "", "");

    public PluginRun Run(string command, string containerId, string netns) =>
        Start(Path, [], Environment(command, containerId, netns), command == "VERSION" ? "" : Config).Finish();

    /// <summary>Starts a program with exactly this environment; stdin is written and closed at once.</summary>
    public static Started Start(string file, IReadOnlyList<string> arguments, IReadOnlyDictionary<string, string> environment, string stdin)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            // Inherited: the plugins write nothing there, and one pipe is read without helper threads that would
            // compete with the plugin for the sandbox's single CPU.
            RedirectStandardError = false,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
            info.ArgumentList.Add(argument);
        info.Environment.Clear();
        foreach (var (key, value) in environment)
            info.Environment[key] = value;
        var clock = Stopwatch.StartNew();
        var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}");
        // Configurations are far smaller than a pipe's buffer: writing before reading cannot block.
        process.StandardInput.Write(stdin);
        process.StandardInput.Close();
        return new Started(process, clock);
    }

    public sealed class Started(Process process, Stopwatch clock)
    {
        public int ProcessId { get; } = process.Id;

        public PluginRun Finish()
        {
            using (process)
            {
                string stdout = process.StandardOutput.ReadToEnd();
                process.WaitForExit();
                var elapsed = clock.Elapsed;
                return new PluginRun(process.ExitCode, stdout, elapsed, ProcessId);
            }
        }

        public async Task<PluginRun> FinishAsync()
        {
            using (process)
            {
                string stdout = await process.StandardOutput.ReadToEndAsync();
                await process.WaitForExitAsync();
                var elapsed = clock.Elapsed;
                return new PluginRun(process.ExitCode, stdout, elapsed, ProcessId);
            }
        }
    }
}

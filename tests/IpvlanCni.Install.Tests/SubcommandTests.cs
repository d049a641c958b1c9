using System.Text.Json;

namespace IpvlanCni.Install.Tests;

/// <summary>The executable's own command line: --help, --version, VERSION, and the CNI path left as it was.</summary>
public class SubcommandTests
{
    static Outcome Ipvlan(params string[] args) => Command.Run(Repo.Plugin, args);

    static readonly Dictionary<string, string> VersionCommand = new() { ["CNI_COMMAND"] = "VERSION" };

    [Fact]
    public void Version_option_prints_the_VERSION_file()
    {
        var outcome = Ipvlan("--version");

        Assert.Equal(0, outcome.ExitCode);
        Assert.Equal($"ipvlan-cni {Repo.Version}\n", outcome.Stdout);
    }

    [Fact]
    public void Help_lists_every_subcommand_and_each_has_its_own_help()
    {
        var help = Ipvlan("--help");

        Assert.Equal(0, help.ExitCode);
        Assert.StartsWith("Usage: ipvlan-cni [SUBCOMMAND [OPTION]...]\n", help.Stdout);
        var subcommands = help.Stdout.Split("Subcommands:\n")[1].Split("\n\n")[0].Split('\n')
            .Select(line => line.Trim().Split(' ')[0]).ToList();
        Assert.Contains("install", subcommands);
        Assert.Contains("uninstall", subcommands);
        Assert.Contains("VERSION", subcommands);
        foreach (var subcommand in subcommands.Where(s => s != "VERSION"))
        {
            var own = Ipvlan(subcommand, "--help");
            Assert.True(own.ExitCode == 0, $"{subcommand} --help: {own}");
            Assert.StartsWith($"Usage: ipvlan-cni {subcommand}", own.Stdout);
            Assert.Contains("Options:", own.Stdout);
        }
    }

    [Fact]
    public void VERSION_as_an_argument_answers_as_CNI_COMMAND_VERSION_does()
    {
        var argument = Ipvlan("VERSION");
        var environment = Command.Run(Repo.Plugin, [], VersionCommand);

        Assert.Equal(0, argument.ExitCode);
        Assert.Equal(environment.Stdout, argument.Stdout);
        using var json = JsonDocument.Parse(argument.Stdout);
        Assert.Equal("1.1.0", json.RootElement.GetProperty("cniVersion").GetString());
    }

    [Fact]
    public void Without_a_subcommand_the_CNI_plugin_runs_and_says_nothing_on_stderr()
    {
        var missing = Command.Run(Repo.Plugin, []);
        var unknownArgument = Command.Run(Repo.Plugin, ["not-a-subcommand"], VersionCommand);

        // The CNI path: the spec's error JSON on stdout, as before the subcommands existed.
        Assert.Equal(1, missing.ExitCode);
        using var error = JsonDocument.Parse(missing.Stdout);
        Assert.Equal(4, error.RootElement.GetProperty("code").GetInt32());
        Assert.Empty(missing.Stderr);
        Assert.Equal(0, unknownArgument.ExitCode);
        Assert.Contains("\"supportedVersions\"", unknownArgument.Stdout);
    }
}

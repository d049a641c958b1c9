using System.Text;

namespace IpvlanCni.Cni;

/// <summary>The spec's name rules (containernetworking/cni pkg/utils), as checks that say what is wrong.</summary>
public static class CniNames
{
    /// <summary>The kernel's IFNAMSIZ (16) less the NUL.</summary>
    public const int MaxInterfaceNameBytes = 15;
    /// <summary>Network names become directory names (NAME_MAX); container IDs become file names.</summary>
    public const int MaxNameBytes = 255;

    /// <summary>^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$ — container IDs and network names.</summary>
    public static bool IsValidIdentifier(string? value, out string problem)
    {
        problem = "";
        if (string.IsNullOrEmpty(value))
            problem = "is empty";
        else if (value.Length > MaxNameBytes)
            problem = $"is longer than {MaxNameBytes} characters";
        else if (!char.IsAsciiLetterOrDigit(value[0]))
            problem = "must start with a letter or digit";
        else if (value.AsSpan().IndexOfAnyExcept(IdentifierChars) is int bad and >= 0)
            problem = $"contains '{value[bad]}' (allowed: letters, digits, '_', '.', '-')";
        return problem.Length == 0;
    }

    /// <summary>The kernel's dev_valid_name(): 1..15 bytes, not "." or "..", no '/', ':' or whitespace.</summary>
    public static bool IsValidInterfaceName(string? name, out string problem)
    {
        problem = "";
        if (string.IsNullOrEmpty(name))
            problem = "is empty";
        else if (Encoding.UTF8.GetByteCount(name) > MaxInterfaceNameBytes)
            problem = $"is longer than {MaxInterfaceNameBytes} bytes";
        else if (name is "." or "..")
            problem = $"is '{name}'";
        else if (name.AsSpan().IndexOfAny('/', ':') >= 0 || name.Any(char.IsWhiteSpace) || name.Contains('\0'))
            problem = "contains '/', ':', NUL or whitespace";
        return problem.Length == 0;
    }

    static readonly System.Buffers.SearchValues<char> IdentifierChars =
        System.Buffers.SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-");
}

/// <summary>CNI_ARGS: "K=V;K=V" (the reference's types.LoadArgs rules: every pair needs '=' and a key).</summary>
public static class CniArgs
{
    public static IReadOnlyList<KeyValuePair<string, string>> Parse(string? text)
    {
        var pairs = new List<KeyValuePair<string, string>>();
        if (string.IsNullOrEmpty(text))
            return pairs;
        foreach (var part in text.Split(';'))
        {
            // Tolerate a trailing or doubled ';': it carries no pair.
            if (part.Length == 0)
                continue;
            int eq = part.IndexOf('=');
            if (eq <= 0)
                throw new CniException(CniErrorCode.InvalidEnvironment,
                    $"CNI_ARGS is invalid: '{part}' is not KEY=VALUE", "CNI_ARGS must look like \"K1=V1;K2=V2\"");
            pairs.Add(new(part[..eq], part[(eq + 1)..]));
        }
        return pairs;
    }

    /// <summary>The last value given for <paramref name="key"/> (later pairs override earlier ones), or null.</summary>
    public static string? Get(IReadOnlyList<KeyValuePair<string, string>> args, string key)
    {
        for (int i = args.Count - 1; i >= 0; i--)
            if (args[i].Key == key)
                return args[i].Value;
        return null;
    }
}

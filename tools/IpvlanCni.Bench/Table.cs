using System.Globalization;
using System.Text;

namespace IpvlanCni.Bench;

/// <summary>One line of the result: ours against the reference, and the goal it must meet (null = for information).</summary>
public sealed record Row(string Metric, string Ours, string Reference, double? Ratio, double? MaxRatio)
{
    public bool? GoalMet => MaxRatio is { } max && Ratio is { } ratio ? ratio <= max : null;

    public static Row Compare(string metric, double ours, double reference, Func<double, string> format, double? maxRatio) =>
        new(metric, format(ours), format(reference), reference > 0 ? ours / reference : null, maxRatio);
}

/// <summary>The plain-text table `make bench` prints.</summary>
public static class Table
{
    static readonly string[] Headers = ["metric", "ours", "reference", "ratio", "goal met?"];

    public static string Format(IReadOnlyList<Row> rows)
    {
        var cells = rows.Select(r => new[]
        {
            r.Metric, r.Ours, r.Reference,
            r.Ratio is { } ratio ? ratio.ToString("0.00", CultureInfo.InvariantCulture) : "-",
            r.GoalMet switch
            {
                true => $"yes (<= {r.MaxRatio!.Value.ToString("0.00", CultureInfo.InvariantCulture)})",
                false => $"NO (<= {r.MaxRatio!.Value.ToString("0.00", CultureInfo.InvariantCulture)})",
                null => "-",
            },
        }).ToList();
        int[] widths = Enumerable.Range(0, Headers.Length)
            .Select(c => cells.Select(row => row[c].Length).Append(Headers[c].Length).Max()).ToArray();
        var text = new StringBuilder();
        void Line(string[] values) => text.AppendLine(string.Join(" | ", values.Select((v, c) => v.PadRight(widths[c]))).TrimEnd());
        Line(Headers);
        text.AppendLine(string.Join("-+-", widths.Select(w => new string('-', w))));
        foreach (var row in cells)
            Line(row);
        return text.ToString();
    }

    public static string Milliseconds(double ms) => ms.ToString("0.0", CultureInfo.InvariantCulture) + " ms";
    public static string Kibibytes(double kb) => kb.ToString("0", CultureInfo.InvariantCulture) + " KiB";
    public static string Mebibytes(long bytes) => (bytes / 1048576.0).ToString("0.00", CultureInfo.InvariantCulture) + " MiB";

    public static double Median(IReadOnlyList<double> values)
    {
        var sorted = values.Order().ToList();
        int middle = sorted.Count / 2;
        return sorted.Count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }
}

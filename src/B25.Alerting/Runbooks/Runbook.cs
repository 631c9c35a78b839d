namespace B25.Alerting.Runbooks;

/// <summary>One alert rule's runbook (<c>docs/runbooks/&lt;AlertName&gt;.md</c>), parsed and rendered once at start.</summary>
/// <param name="AlertName">The alert rule's name, from the file name; matched exactly, as Prometheus does.</param>
/// <param name="Title">The text of the <c># </c> heading (the alert name in a well-formed runbook).</param>
/// <param name="Summary">The one-line paragraph under the title, as plain text; empty when missing.</param>
/// <param name="FirstAction">The first item of the numbered list under <c>## Actions</c>, as plain text (one short
/// imperative sentence, at most <see cref="RunbookParser.MaxFirstActionLength"/> characters in a well-formed
/// runbook); null when the runbook has none.</param>
/// <param name="Html">The whole runbook as HTML (raw HTML in the Markdown is shown as text, unsafe link schemes removed).</param>
/// <param name="File">The file it was read from.</param>
internal sealed record Runbook(string AlertName, string Title, string Summary, string? FirstAction, string Html, string File);

/// <summary>What is wrong with a runbook file: reported at start, never fatal.</summary>
internal sealed record RunbookProblem(string File, string Problem);

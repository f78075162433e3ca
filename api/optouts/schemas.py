import uuid
from datetime import datetime

from pydantic import BaseModel, Field, model_validator

from api.jobs.schemas import JobSummary
from api.optouts.tables import ConceptKind, RequestStatus
from api.schemas import CleanText

Prompt = CleanText(500)
PromptList = list[Prompt]  # type: ignore[valid-type]
MAX_PROMPTS = 200


def normalize_concept(text: str) -> str:
    """Casefold and collapse whitespace, so "Van  Gogh" and "van gogh" are one target."""
    return " ".join(text.casefold().split())


def check_prompts(
    kind: ConceptKind, anchor: str, target: str, anchor_prompts: list[str], target_prompts: list[str]
) -> None:
    """Raise ValueError when the prompts break the rules of the concept kind."""
    if normalize_concept(anchor) == normalize_concept(target):
        raise ValueError("target_concept and anchor_concept must differ")
    if target_prompts and kind != ConceptKind.MEMORIZATION:
        raise ValueError(
            "target_prompts (paraphrases of a memorized caption) apply only to concept_kind memorization"
        )
    if kind == ConceptKind.INSTANCE:
        missing = [prompt for prompt in anchor_prompts if normalize_concept(anchor) not in normalize_concept(prompt)]
        if missing:
            raise ValueError(
                f"instance anchor prompts must contain the anchor concept {anchor!r}; {missing[0]!r} does not"
            )


class OptOutCreate(BaseModel):
    model_id: uuid.UUID
    concept_kind: ConceptKind
    target_concept: CleanText(500) = Field(  # type: ignore[valid-type]
        description="What to remove: a character, an artist's style, or a memorized caption."
    )
    anchor_concept: CleanText(500) = Field(  # type: ignore[valid-type]
        description="What the target should look like afterwards, e.g. 'cat' or 'painting'."
    )
    anchor_prompts: PromptList = Field(default_factory=list, max_length=MAX_PROMPTS)
    target_prompts: PromptList = Field(
        default_factory=list,
        max_length=MAX_PROMPTS,
        description="Memorization only: paraphrases of the memorized caption.",
    )
    contact: CleanText(320)  # type: ignore[valid-type]
    justification: CleanText(5000)  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _check_kind_rules(self) -> "OptOutCreate":
        check_prompts(
            self.concept_kind, self.anchor_concept, self.target_concept, self.anchor_prompts, self.target_prompts
        )
        return self


class OptOutApprove(BaseModel):
    anchor_concept: CleanText(500) | None = None  # type: ignore[valid-type]
    anchor_prompts: PromptList | None = Field(default=None, max_length=MAX_PROMPTS)
    target_prompts: PromptList | None = Field(default=None, max_length=MAX_PROMPTS)
    start_job: bool = Field(
        default=True,
        description="Queue a job for this request now; false leaves it approved, to group "
        "with others through POST /v1/jobs.",
    )


class OptOutReject(BaseModel):
    reason: CleanText(2000)  # type: ignore[valid-type]


class OptOutPublic(BaseModel):
    id: uuid.UUID
    creator_id: uuid.UUID
    model_id: uuid.UUID
    concept_kind: ConceptKind
    target_concept: str
    anchor_concept: str
    anchor_prompts: list[str]
    target_prompts: list[str]
    has_memorized_image: bool
    contact: str
    justification: str
    status: RequestStatus
    rejection_reason: str | None
    failure_reason: str | None
    job: JobSummary | None
    created_at: datetime
    updated_at: datetime
    decided_at: datetime | None
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


class ImageLink(BaseModel):
    url: str
    sha256: str
    expires_in_s: int

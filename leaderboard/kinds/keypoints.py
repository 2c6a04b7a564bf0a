"""Facial keypoints on the site: the score and the MSE (``grader.kinds.keypoints``) say it all."""

from leaderboard.kinds import KindPage, register


@register
class KeypointsPage(KindPage):
    name = "keypoints"
